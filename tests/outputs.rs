//! The step outputs as the runner reads them: the crate's heredoc writer against the
//! tests' one parser of workflow outputs (`support::parse_outputs`).

mod support;

use gitops_flow::actions::write_outputs;
use support::try_parse_outputs;

#[test]
fn values_with_newlines_and_key_value_text_cannot_forge_outputs() {
    let evil = "1.2.3\nchanged=true\nrevision<<EOF\nforged\nEOF".to_string();
    let pairs = vec![
        ("version".to_string(), evil.clone()),
        ("changed".to_string(), "false".to_string()),
    ];
    let mut buf = Vec::new();
    write_outputs(&mut buf, &pairs).unwrap();
    let parsed = try_parse_outputs(&String::from_utf8(buf).unwrap()).unwrap();
    assert_eq!(parsed["version"], evil);
    assert_eq!(parsed["changed"], "false");
    assert!(!parsed.contains_key("revision"));
    assert_eq!(parsed.len(), 2);
}

#[test]
fn parser_follows_runner_rules() {
    let p = try_parse_outputs("a=1\nb<<X\nline1\nline2\nX\na=2\n").unwrap();
    assert_eq!(p["a"], "2");
    assert_eq!(p["b"], "line1\nline2");
    assert!(try_parse_outputs("b<<X\nunterminated\n").is_err());
}
