//! `GITHUB_OUTPUT`: `name<<DELIMITER` heredocs with a fresh random delimiter per value.

use std::collections::HashMap;
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

/// Parses an output file as the runner does: `name=value` lines and
/// `name<<DELIM` heredocs; a later value of the same name wins.
pub fn parse_output_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delim = &line[h + 2..];
                if name.is_empty() || delim.is_empty() {
                    return Err(format!("invalid heredoc line `{line}`"));
                }
                let mut value = Vec::new();
                let mut closed = false;
                for l in lines.by_ref() {
                    let l = l.strip_suffix('\r').unwrap_or(l);
                    if l == delim {
                        closed = true;
                        break;
                    }
                    value.push(l);
                }
                if !closed {
                    return Err(format!("matching delimiter not found `{delim}`"));
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            _ => return Err(format!("invalid line `{line}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_newlines_and_key_value_text_cannot_forge_outputs() {
        let evil = "1.2.3\nchanged=true\nrevision<<EOF\nforged\nEOF".to_string();
        let pairs = vec![
            ("version".to_string(), evil.clone()),
            ("changed".to_string(), "false".to_string()),
        ];
        let mut buf = Vec::new();
        write_outputs(&mut buf, &pairs).unwrap();
        let parsed = parse_output_file(&String::from_utf8(buf).unwrap()).unwrap();
        assert_eq!(parsed["version"], evil);
        assert_eq!(parsed["changed"], "false");
        assert!(!parsed.contains_key("revision"));
        assert_eq!(parsed.len(), 2);
    }

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

    #[test]
    fn parser_follows_runner_rules() {
        let p = parse_output_file("a=1\nb<<X\nline1\nline2\nX\na=2\n").unwrap();
        assert_eq!(p["a"], "2");
        assert_eq!(p["b"], "line1\nline2");
        assert!(parse_output_file("b<<X\nunterminated\n").is_err());
    }
}
