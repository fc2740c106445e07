//! `GITHUB_OUTPUT`: `name<<DELIMITER` heredocs with a fresh random delimiter per value.

use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};

/// A delimiter no one can guess: 128 bits from the process's random hasher keys.
pub fn random_delimiter() -> String {
    let mut bits = String::from("ghadelimiter_");
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        bits.push_str(&format!("{:016x}", h.finish()));
    }
    bits
}

/// Writes `pairs` as heredocs. A value that contains its delimiter is refused,
/// as @actions/core does, so that no value can forge another output.
pub fn write_outputs(w: &mut impl Write, pairs: &[(String, String)]) -> io::Result<()> {
    let mut buf = Vec::new();
    for (name, value) in pairs {
        let delim = random_delimiter();
        if name.contains(&delim) || value.contains(&delim) || name.contains('\n') {
            return Err(io::Error::other(format!(
                "output `{name}` contains its delimiter; refusing to write it"
            )));
        }
        write!(buf, "{name}<<{delim}\n{value}\n{delim}\n")?;
    }
    w.write_all(&buf)
}

/// Outputs printed as `name=value` lines (outside Actions, without a dotenv file).
/// One line per output: a line break in a value is written as `\n` (and a backslash
/// as `\\`), so that no value can start a line of its own.
pub fn write_plain(w: &mut impl Write, pairs: &[(String, String)]) -> io::Result<()> {
    let mut buf = String::new();
    for (name, value) in pairs {
        let v = value.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r");
        buf.push_str(&format!("{name}={v}\n"));
    }
    w.write_all(buf.as_bytes())
}

/// The dotenv name of an output: GitLab takes letters, digits and `_` only, and the
/// variables reach every later job, so they carry a prefix (`GITOPS_FLOW_PULL_REQUEST_URL`).
pub fn dotenv_name(name: &str) -> String {
    format!(
        "GITOPS_FLOW_{}",
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>()
    )
}

/// Outputs as a dotenv file (GitLab CI's `artifacts:reports:dotenv`): `NAME=value`,
/// one per line. Dotenv values cannot span lines: a line break becomes a space.
pub fn write_dotenv(w: &mut impl Write, pairs: &[(String, String)]) -> io::Result<()> {
    let mut buf = String::new();
    for (name, value) in pairs {
        let v = value.replace(['\n', '\r'], " ");
        buf.push_str(&format!("{}={v}\n", dotenv_name(name)));
    }
    w.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_dotenv_lines_cannot_forge_outputs() {
        let pairs = vec![
            ("version".to_string(), "1.2.3\nchanged=true".to_string()),
            (
                "pull-request-url".to_string(),
                "https://x/-/merge_requests/1".to_string(),
            ),
        ];
        let mut buf = Vec::new();
        write_plain(&mut buf, &pairs).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "version=1.2.3\\nchanged=true\npull-request-url=https://x/-/merge_requests/1\n"
        );
        let mut buf = Vec::new();
        write_dotenv(&mut buf, &pairs).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "GITOPS_FLOW_VERSION=1.2.3 changed=true\nGITOPS_FLOW_PULL_REQUEST_URL=https://x/-/merge_requests/1\n"
        );
    }

    #[test]
    fn delimiters_are_fresh() {
        assert_ne!(random_delimiter(), random_delimiter());
        assert!(random_delimiter().len() > 40);
    }
}
