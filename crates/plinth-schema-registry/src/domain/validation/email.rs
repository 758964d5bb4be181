//! The `email` format, as `jsonschema` checks it, with a fast path for plain addresses.
//!
//! `jsonschema` parses every address with the `email_address` crate (which allocates a copy of it),
//! then checks the domain as a hostname. Most addresses are plain: an unquoted ASCII local part of
//! `atext` atoms and a hostname of letters, digits and hyphens. Those are accepted here without
//! parsing, by the same rules both crates apply to them; anything else (quoted local parts, domain
//! literals, display names, non-ASCII, punycode labels, every invalid address) goes to `jsonschema`'s
//! own check, so the format accepts exactly what it did before. A differential test holds the two
//! equal.

use std::sync::LazyLock;

use serde_json::Value;

/// The longest local part `email_address` accepts.
const LOCAL_PART_MAX: usize = 64;
/// The longest hostname `jsonschema` accepts.
const HOSTNAME_MAX: usize = 253;
/// The longest hostname label.
const LABEL_MAX: usize = 63;

/// `jsonschema`'s own `email` check, for what the fast path does not decide.
static FULL_CHECK: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&serde_json::json!({"format": "email"}))
        .ok()
});

/// Whether `text` is an `email` (RFC 5321 mailbox) as `jsonschema` defines it.
pub(super) fn is_email(text: &str) -> bool {
    is_plain_email(text) || full_check(text)
}

fn full_check(text: &str) -> bool {
    FULL_CHECK
        .as_ref()
        .is_some_and(|validator| validator.is_valid(&Value::String(text.to_owned())))
}

/// RFC 5322 `atext`, ASCII only.
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// Whether `text` is a plain address that both `email_address` and `jsonschema`'s hostname check
/// accept: `atom(.atom)*@label(.label)*`, ASCII, within the length limits, no label with `--` in its
/// third and fourth characters (those are checked as punycode by the full check).
pub(super) fn is_plain_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > LOCAL_PART_MAX {
        return false;
    }
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
    {
        return false;
    }
    if domain.is_empty() || domain.len() > HOSTNAME_MAX {
        return false;
    }
    domain.split('.').all(|label| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= LABEL_MAX
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
            && !(bytes.len() >= 4 && bytes[2] == b'-' && bytes[3] == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &[&str] = &[
        "a@b.io",
        "customer123@example.com",
        "first.last+tag@sub.example.co.uk",
        "o'neil@example.org",
        "x!#$%&'*+-/=?^_`{|}~@a1-b2.c3",
        "1@2",
        "a@localhost",
        "a@b",
        "",
        "@",
        "a@",
        "@b.io",
        "a@@b.io",
        "a@b@c.io",
        ".a@b.io",
        "a.@b.io",
        "a..b@b.io",
        "a@.b.io",
        "a@b.io.",
        "a@b..io",
        "a@-b.io",
        "a@b-.io",
        "a@b_c.io",
        "a b@c.io",
        "\"a b\"@c.io",
        "\"\"@c.io",
        "\"a@b\"@c.io",
        "Name <a@b.io>",
        "a@[127.0.0.1]",
        "a@[IPv6:::1]",
        "a@[300.0.0.1]",
        "a@xn--nxasmq6b.com",
        "a@xn--zz.com",
        "a@ab--cd.com",
        "a@a--b.com",
        "é@b.io",
        "a@bé.io",
        "a@b.io\n",
        "a\u{0}@b.io",
    ];

    fn long_cases() -> Vec<String> {
        let label = |n: usize| "a".repeat(n);
        vec![
            format!("{}@b.io", label(64)),
            format!("{}@b.io", label(65)),
            format!("a@{}.io", label(63)),
            format!("a@{}.io", label(64)),
            format!(
                "a@{}",
                vec![label(63); 4].join(".").get(..253).unwrap_or_default()
            ),
            format!(
                "a@{}",
                [label(63), label(63), label(63), label(62)].join(".")
            ),
            format!(
                "a@{}",
                [label(63), label(63), label(63), label(63)].join(".")
            ),
        ]
    }

    #[test]
    fn the_fast_path_agrees_with_jsonschema() {
        let mut cases: Vec<String> = CASES.iter().map(|case| (*case).to_owned()).collect();
        cases.extend(long_cases());
        // Every short string over an alphabet of the characters that matter.
        let alphabet = ['a', '1', '-', '.', '@', '"', '+', '[', ']', ' ', '_'];
        for length in 1..=5 {
            let mut indices = vec![0usize; length];
            loop {
                cases.push(indices.iter().map(|&i| alphabet[i]).collect());
                let mut position = 0;
                while position < length {
                    indices[position] += 1;
                    if indices[position] < alphabet.len() {
                        break;
                    }
                    indices[position] = 0;
                    position += 1;
                }
                if position == length {
                    break;
                }
            }
        }
        let mut plain = 0;
        for case in &cases {
            let expected = full_check(case);
            assert_eq!(is_email(case), expected, "{case:?}");
            if is_plain_email(case) {
                plain += 1;
                assert!(
                    expected,
                    "the fast path accepted {case:?}, which jsonschema refuses"
                );
            }
        }
        assert!(plain > 500, "only {plain} cases took the fast path");
        assert!(FULL_CHECK.is_some());
    }
}
