//! The principal of a mutual-TLS connection, as Kafka makes it: the client certificate's
//! subject in RFC 2253 form (what Java's `X500Principal.getName()` prints, e.g.
//! `CN=alice,OU=eng,O=Acme,C=US`), passed through `ssl.principal.mapping.rules`.

use anyhow::{anyhow, bail};
use regex::Regex;
use x509_parser::asn1_rs::ToDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The attribute keywords RFC 2253 names; other attributes print as a dotted OID and `#hex`.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate in RFC 2253 form: the last RDN first, comma-separated,
/// values escaped.
pub fn subject_dn(der: &[u8]) -> anyhow::Result<String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| anyhow!("bad certificate: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
            match (keyword, atv.as_str()) {
                (Some(keyword), Ok(text)) => parts.push(format!("{keyword}={}", escape(text))),
                _ => {
                    let der = atv
                        .attr_value()
                        .to_der_vec()
                        .map_err(|e| anyhow!("a subject attribute: {e}"))?;
                    parts.push(format!("{oid}=#{}", hex(&der)));
                }
            }
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// RFC 2253 section 2.4: `,+"\<>;` escaped, and a leading `#` or space and a trailing space.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssl.principal.mapping.rules`: the first rule whose pattern matches the whole subject gives
/// the name; `DEFAULT` keeps the subject as it is. No matching rule refuses the connection,
/// as Kafka does.
#[derive(Debug)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        /// In the regex crate's syntax (`${1}`), translated from Java's (`$1`).
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// The longest rule list accepted, and the largest compiled pattern: the rules are an
/// operator's setting, but a runaway pattern should fail at start, not on a handshake.
const MAX_RULES: usize = 100;
const MAX_PATTERN_BYTES: usize = 1 << 20;

impl PrincipalMapper {
    /// Parses Kafka's rule list: `DEFAULT` or `RULE:pattern/replacement/[LU]`, separated by
    /// commas or newlines (a comma inside a pattern belongs to it).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if rules.len() == MAX_RULES {
                bail!("ssl.principal.mapping.rules: more than {MAX_RULES} rules");
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| {
                    anyhow!("ssl.principal.mapping.rules: unterminated pattern in `{rest}`")
                })?;
                let (replacement, after) = until_slash(after).ok_or_else(|| {
                    anyhow!("ssl.principal.mapping.rules: unterminated replacement in `{rest}`")
                })?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let pattern = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                    .size_limit(MAX_PATTERN_BYTES)
                    .build()
                    .map_err(|e| {
                        anyhow!("ssl.principal.mapping.rules: bad pattern `{pattern}`: {e}")
                    })?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                bail!("ssl.principal.mapping.rules: invalid rule `{rest}`");
            }
            // Whatever follows a rule up to the next separator is ignored, as Kafka's parser does.
            rest = match rest.find([',', '\n']) {
                Some(at) => rest[at + 1..].trim_start(),
                None => "",
            };
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal name for subject `dn`, or `None` when no rule applies.
    pub fn map(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                let captures = pattern.captures(dn)?;
                let mut name = String::new();
                captures.expand(replacement, &mut name);
                Some(match case {
                    Case::Keep => name,
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                })
            }
        })
    }
}

/// The text up to the first `/` not escaped by a backslash, and what follows that `/`.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Java's replacement syntax (`$1`, `${name}`, `\x` for a literal x) in the regex crate's.
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
                out.push('}');
            }
            '$' => out.push('$'),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keeps_the_subject() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.map("CN=a,O=b").as_deref(), Some("CN=a,O=b"));
    }

    #[test]
    fn kafka_rule_examples_map_as_documented() {
        // The examples of Kafka's security documentation.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\nRULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\nDEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.map("cn=Bob,o=x").as_deref(), Some("bob"));
        assert_eq!(m.map("O=nobody").as_deref(), Some("O=nobody"));
    }

    #[test]
    fn no_matching_rule_is_none_and_bad_rules_are_refused() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/U").unwrap();
        assert_eq!(m.map("CN=x").as_deref(), Some("X"));
        assert_eq!(m.map("O=x"), None);
        assert!(PrincipalMapper::parse("RULE:^CN=(.*)$").is_err());
        assert!(PrincipalMapper::parse("RULE:(/x/").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
    }

    #[test]
    fn subjects_print_last_rdn_first_with_escapes() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            "CN=alice,O=Acme\\, Inc,C=US"
        );
        // An attribute without an RFC 2253 keyword prints as its OID and the DER of its value.
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Utf8String("a@b".into()),
        );
        dn.push(rcgen::DnType::CommonName, "x");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            "CN=x,1.2.840.113549.1.9.1=#0c03614062"
        );
    }
}
