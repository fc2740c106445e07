//! Argo CD's `branch_slug`: what the ApplicationSet pull-request generator calls a
//! branch, so that preview environments, URLs and Application names made here
//! match the ones Argo CD made.
//!
//! Ported from argoproj/argo-cd `applicationset/generators/pull_request.go`
//! (commit 37ee0097): `slug.MaxLength = 50`, `slug.CustomSub = {"_": "-"}`, then
//! `slug.Make(pull.Branch)` of gosimple/slug v1.15.0 (`slug.go` `MakeLang(s, "en")`
//! and `smartTruncate`), whose non-ASCII step is gosimple/unidecode v1.0.1. In order:
//!
//! 1. trim white space; `_` → `-` (Argo CD's custom substitution);
//!    `&` → `and`, `@` → `at` (the "en" substitutions of `languages_substitution.go`,
//!    merged with its `defaultSub`: `"`, `'` and `’` dropped, `‒–—―` → `-`);
//! 2. every non-ASCII character → its unidecode transliteration (`ü` → `u`,
//!    `ß` → `ss`, `北` → `Bei `); characters above U+FFFF are dropped;
//! 3. lower case; every character outside `[a-z0-9_-]` → `-`; runs of `-` → one;
//!    `-` and `_` trimmed from both ends;
//! 4. smart truncation at 50 bytes: longer slugs are cut at the last `-` at or
//!    before byte 50, or at byte 50 when there is none.
//!
//! Not followed: `slug.EnableSmartTruncate` is a package global that Argo CD's
//! `slugify` template function also sets; an ApplicationSet that calls
//! `slugify` with smart truncation off leaves a hard cut at 50 for the pull-request
//! generator too. The default (smart) is what is implemented.

/// The reduced transliteration table, built by `make_table.py` (see there).
static TABLE: &[u8] = include_bytes!("unidecode.bin");

/// Argo CD's `slug.MaxLength` for the pull-request generator.
pub const MAX_LEN: usize = 50;

fn offsets() -> &'static [u32] {
    static OFFSETS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    OFFSETS.get_or_init(|| {
        let mut out = Vec::with_capacity(0x10000 - 0x80);
        let mut at = 0usize;
        while at < TABLE.len() {
            out.push(at as u32);
            at += 1 + TABLE[at] as usize;
        }
        out
    })
}

/// The slug-relevant transliteration of one non-ASCII character.
fn transliterate(c: char) -> &'static str {
    let cp = c as usize;
    if !(0x80..0x10000).contains(&cp) {
        return "";
    }
    let Some(&at) = offsets().get(cp - 0x80) else {
        return "";
    };
    let at = at as usize;
    let len = TABLE[at] as usize;
    std::str::from_utf8(&TABLE[at + 1..at + 1 + len]).unwrap_or("")
}

/// Argo CD's `branch_slug` of `branch`.
pub fn branch_slug(branch: &str) -> String {
    let mut s = String::with_capacity(branch.len());
    for c in branch.trim().chars() {
        match c {
            '_' => s.push('-'),
            '&' => s.push_str("and"),
            '@' => s.push_str("at"),
            '"' | '\'' | '’' => {}
            '‒' | '–' | '—' | '―' => s.push('-'),
            c if c.is_ascii() => s.push(c.to_ascii_lowercase()),
            c => s.push_str(transliterate(c)),
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches(['-', '_']);
    smart_truncate(out).to_string()
}

fn smart_truncate(text: &str) -> &str {
    if text.len() <= MAX_LEN {
        return text;
    }
    let b = text.as_bytes();
    match (0..=MAX_LEN).rev().find(|&i| b[i] == b'-') {
        Some(i) => &text[..i],
        None => &text[..MAX_LEN],
    }
}

#[cfg(test)]
mod tests {
    use super::branch_slug;

    #[test]
    fn argo_cd_pull_request_generator_cases() {
        // applicationset/generators/pull_request_test.go
        assert_eq!(branch_slug("branch1"), "branch1");
        assert_eq!(branch_slug("my_branch"), "my-branch");
        assert_eq!(branch_slug("a-very-short-sha"), "a-very-short-sha");
        assert_eq!(
            branch_slug(
                "feat/areally+long_pull_request_name_to_test_argo_slugification_and_branch_name_shortening_feature"
            ),
            "feat-areally-long-pull-request-name-to-test-argo"
        );
        assert_eq!(
            branch_slug(
                "feat/anotherreally+long_pull_request_name_to_test_argo_slugification_and_branch_name_shortening_feature"
            ),
            "feat-anotherreally-long-pull-request-name-to-test"
        );
        // applicationset/utils/utils_test.go, smart truncation at 50
        assert_eq!(
            branch_slug("feat/areallylongpullrequestnametotestargoslugificationandbranchnameshorteningfeature"),
            "feat"
        );
    }

    #[test]
    fn gosimple_slug_make_cases_with_argo_cds_underscore_rule() {
        // gosimple/slug v1.15.0 slug_test.go TestSlugMake; `_` becomes `-` under Argo CD.
        for (input, want) in [
            ("DOBROSLAWZYBORT", "dobroslawzybort"),
            ("  Dobroslaw     Zybort  ?", "dobroslaw-zybort"),
            ("Dobrosław Żybort", "dobroslaw-zybort"),
            ("Ala ma 6 kotów.", "ala-ma-6-kotow"),
            ("áÁàÀãÃâÂäÄąĄą̊Ą̊", "aaaaaaaaaaaaaa"),
            ("óÓòÒõÕôÔöÖǫǪǭǬø", "ooooooooooooooo"),
            ("·/,:;`˜'\"", ""),
            ("2000–2013", "2000-2013"),
            ("test_slug", "test-slug"),
            ("_test_slug_", "test-slug"),
            ("Æ", "ae"),
            ("Ich heiße", "ich-heisse"),
            ("𐀀", ""),
            ("% 5 @ 4 $ 3 / 2 & 1 & 2 # 3 @ 4 _ 5", "5-at-4-3-2-and-1-and-2-3-at-4-5"),
            ("This & that", "this-and-that"),
            ("fácil €", "facil-eu"),
            ("smile ☺", "smile"),
            ("Hellö Wörld хелло ворлд", "hello-world-khello-vorld"),
            ("\"C'est déjà l’été.\"", "cest-deja-lete"),
            ("jaja---lol-méméméoo--a", "jaja-lol-mememeoo-a"),
            ("影師", "ying-shi"),
            ("Đanković & Kožušček", "dankovic-and-kozuscek"),
            ("ĂăÂâÎîȘșȚț", "aaaaiisstt"),
        ] {
            assert_eq!(branch_slug(input), want, "{input:?}");
        }
    }

    #[test]
    fn branch_names() {
        assert_eq!(branch_slug("Feature/Login-Page"), "feature-login-page");
        assert_eq!(branch_slug("fix/JIRA-42_null.pointer"), "fix-jira-42-null-pointer");
        assert_eq!(branch_slug("release/v1.2.3"), "release-v1-2-3");
        assert_eq!(
            branch_slug("dependabot/npm_and_yarn/lodash-4.17.21"),
            "dependabot-npm-and-yarn-lodash-4-17-21"
        );
        assert_eq!(branch_slug("feature/überprüfung-straße"), "feature-uberprufung-strasse");
        assert_eq!(branch_slug("feat/🚀-launch"), "feat-launch");
        // 80 characters, cut at the last `-` at or before 50.
        let long = "feature/add-the-new-checkout-flow-with-apple-pay-and-google-pay-support-for-euro";
        assert_eq!(long.len(), 80);
        assert_eq!(branch_slug(long), "feature-add-the-new-checkout-flow-with-apple-pay");
        // 80 characters with a dash exactly at byte 50: cut there, 50 bytes kept.
        let at50 = format!("{}-{}", "a".repeat(50), "b".repeat(29));
        assert_eq!(branch_slug(&at50), "a".repeat(50));
        // One long word: hard cut at 50.
        assert_eq!(branch_slug(&"x".repeat(80)), "x".repeat(50));
        for b in [long, &at50, "a/b", "Ä_Ö"] {
            let s = branch_slug(b);
            assert!(s.len() <= 50 && !s.starts_with('-') && !s.ends_with('-'), "{s}");
        }
    }
}
