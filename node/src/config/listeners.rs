//! Kafka's listener settings: `listeners` (several `NAME://host:port`), their protocols
//! (`listener.security.protocol.map`), what each tells clients (`advertised.listeners`), the
//! one other nodes use (`inter.broker.listener.name`), and per-listener overrides of the
//! `ssl.*` settings and `sasl.enabled.mechanisms` (`listener.name.<name>.<setting>`, the
//! name in lower case, as in Kafka).

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};

use super::tls::TlsSettings;
use super::Values;

/// At most this many listeners: each is a socket, a task and an endpoint every broker
/// registers in the Raft state.
pub const MAX_LISTENERS: usize = 16;
/// The longest listener name (Kafka sets no limit; the name is stored in the Raft state).
pub const MAX_NAME_BYTES: usize = 64;

/// What a listener speaks (`listener.security.protocol.map` maps listener names to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether clients authenticate with SASL before anything else is answered.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether the listener speaks TLS (and nothing else).
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// One listener, fully resolved.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The name, in upper case (`PLAINTEXT`, `CLIENT`, ...); a bare `host:port` is `PLAINTEXT`.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// Its entry in `advertised.listeners`, if it has one.
    pub advertised: Option<(String, u16)>,
    /// The `ssl.*` settings, on an SSL or SASL_SSL listener.
    pub tls: Option<TlsSettings>,
    /// `sasl.enabled.mechanisms`, on a SASL listener (empty otherwise).
    pub sasl_mechanisms: Vec<String>,
}

/// The settings a listener may override with `listener.name.<name>.<setting>`.
pub fn per_listener(setting: &str) -> bool {
    setting.starts_with("ssl.") || setting == "sasl.enabled.mechanisms"
}

/// Whether `name` is a per-listener override of a known setting.
pub fn is_override(name: &str, known: impl Fn(&str) -> bool) -> bool {
    name.strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(listener, setting)| {
            valid_name(listener) && per_listener(setting) && known(setting)
        })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every listener, in the order `listeners` gives them, and the index of the inter-broker one.
pub fn parse(values: &Values) -> anyhow::Result<(Vec<ListenerConfig>, usize)> {
    let get = |name: &str| values.get(name).map_or("", |(v, _)| v.as_str());
    let map = get("listener.security.protocol.map");
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for entry in split(get("listeners")) {
        let (name, host, port) = split_one(entry)?;
        if listeners.iter().any(|l| l.name == name) {
            bail!("listeners: `{name}` is given twice");
        }
        let protocol = protocol_of(&name, map)?;
        let bind = resolve(&host, port)?;
        if port != 0 && listeners.iter().any(|l| l.bind.port() == port) {
            bail!("listeners: port {port} is given twice");
        }
        // `listener.name.<name>.<setting>`, else the setting itself.
        let prefix = format!("listener.name.{}.", name.to_ascii_lowercase());
        let own = |setting: &str| {
            values
                .get(&format!("{prefix}{setting}"))
                .or_else(|| values.get(setting))
                .map_or("", |(v, _)| v.as_str())
        };
        let tls = if protocol.is_tls() {
            Some(
                TlsSettings::from_values(&own)
                    .with_context(|| format!("the ssl.* settings of listener {name}"))?,
            )
        } else {
            None
        };
        let sasl_mechanisms = if protocol.is_sasl() {
            mechanisms(own("sasl.enabled.mechanisms"))?
        } else {
            Vec::new()
        };
        listeners.push(ListenerConfig {
            name,
            protocol,
            bind,
            advertised: None,
            tls,
            sasl_mechanisms,
        });
    }
    if listeners.is_empty() {
        bail!("listeners names no listener");
    }
    if listeners.len() > MAX_LISTENERS {
        bail!("listeners: at most {MAX_LISTENERS} listeners");
    }
    if listeners.iter().all(|l| l.tls.is_none()) && TlsSettings::any_set(&get) {
        tracing::warn!("ssl.* settings are set but no listener speaks SSL or SASL_SSL: they are not used, and nothing is encrypted");
    }
    for entry in split(get("advertised.listeners")) {
        let (name, host, port) = split_one(entry)?;
        let listener = listeners
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or_else(|| anyhow!("advertised.listeners: `{name}` is not in listeners"))?;
        if listener.advertised.is_some() {
            bail!("advertised.listeners: `{name}` is given twice");
        }
        if host.is_empty() || port == 0 {
            bail!("advertised.listeners: `{entry}` needs a host and a port");
        }
        listener.advertised = Some((host, port));
    }
    let inter_broker = match get("inter.broker.listener.name").trim() {
        "" => 0,
        wanted => listeners
            .iter()
            .position(|l| l.name.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| anyhow!("inter.broker.listener.name={wanted} is not in listeners"))?,
    };
    Ok((listeners, inter_broker))
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|l| !l.is_empty())
}

/// `NAME://host:port` into its upper-case name, host and port; a bare `host:port` is
/// `PLAINTEXT`. An IPv6 host is written in brackets.
fn split_one(entry: &str) -> anyhow::Result<(String, String, u16)> {
    let (name, address) = match entry.split_once("://") {
        Some((name, rest)) => (name, rest),
        None => ("PLAINTEXT", entry),
    };
    if !valid_name(name) {
        bail!("listener `{entry}`: a name is 1 to {MAX_NAME_BYTES} letters, digits, `_` or `-`");
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("listener `{entry}` has no port"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow!("listener `{entry}` has a bad port"))?;
    Ok((
        name.to_ascii_uppercase(),
        host.trim_matches(['[', ']']).to_string(),
        port,
    ))
}

/// The protocol of listener `name` in `map` (`NAME:PROTOCOL,...`).
fn protocol_of(name: &str, map: &str) -> anyhow::Result<SecurityProtocol> {
    let protocol = map
        .split(',')
        .filter_map(|entry| entry.trim().split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, p)| p.trim().to_ascii_uppercase())
        .ok_or_else(|| anyhow!("listener `{name}` is not in listener.security.protocol.map"))?;
    match protocol.as_str() {
        "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
        "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
        "SSL" => Ok(SecurityProtocol::Ssl),
        "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
        other => bail!("unknown security protocol `{other}`"),
    }
}

/// The address to bind; an empty host binds every interface, as in Kafka.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("resolving listener host `{host}`"))?
        .next()
        .ok_or_else(|| anyhow!("listener host `{host}` does not resolve"))
}

fn mechanisms(text: &str) -> anyhow::Result<Vec<String>> {
    let mechanisms: Vec<String> = split(text).map(str::to_string).collect();
    if let Some(m) = mechanisms.iter().find(|m| {
        !matches!(
            m.as_str(),
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER"
        )
    }) {
        bail!("sasl.enabled.mechanisms: {m} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)");
    }
    Ok(mechanisms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, SETTINGS};

    fn values(pairs: &[(&str, &str)]) -> Values {
        let mut values: Values = SETTINGS
            .iter()
            .map(|s| (s.name.to_string(), (s.default.to_string(), Source::Default)))
            .collect();
        for (k, v) in pairs {
            values.insert(k.to_string(), (v.to_string(), Source::Static));
        }
        values
    }

    #[test]
    fn several_named_listeners_with_their_own_settings() {
        let v = values(&[
            (
                "listeners",
                "internal://127.0.0.1:9093, CLIENT://127.0.0.1:0,SECURE://[::1]:9095",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT,SECURE:SASL_SSL",
            ),
            ("advertised.listeners", "CLIENT://kafka.example:19092"),
            ("inter.broker.listener.name", "internal"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("listener.name.client.sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.secure.ssl.keystore.location", "/k.pem"),
        ]);
        let (listeners, inter_broker) = parse(&v).unwrap();
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["INTERNAL", "CLIENT", "SECURE"]);
        assert_eq!(inter_broker, 0);
        assert_eq!(listeners[0].protocol, SecurityProtocol::Plaintext);
        assert!(listeners[0].sasl_mechanisms.is_empty() && listeners[0].tls.is_none());
        assert_eq!(listeners[1].sasl_mechanisms, ["PLAIN"]);
        assert_eq!(
            listeners[1].advertised,
            Some(("kafka.example".to_string(), 19092))
        );
        assert_eq!(listeners[2].sasl_mechanisms, ["SCRAM-SHA-512"]);
        assert_eq!(listeners[2].bind, "[::1]:9095".parse().unwrap());
        assert!(listeners[2].tls.is_some());
        assert!(listeners[2].advertised.is_none());
    }

    #[test]
    fn inconsistent_listeners_are_refused() {
        let refused = |pairs: &[(&str, &str)]| parse(&values(pairs)).is_err();
        let two = ("listeners", "A://127.0.0.1:1,B://127.0.0.1:2");
        let map = ("listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT");
        assert!(!refused(&[two, map]));
        assert!(refused(&[
            ("listeners", "A://127.0.0.1:1,A://127.0.0.1:2"),
            map
        ]));
        assert!(refused(&[
            ("listeners", "A://127.0.0.1:1,B://127.0.0.1:1"),
            map
        ]));
        assert!(refused(&[
            two,
            ("listener.security.protocol.map", "A:PLAINTEXT")
        ]));
        assert!(refused(&[two, map, ("advertised.listeners", "C://h:1")]));
        assert!(refused(&[two, map, ("advertised.listeners", "A://h:0")]));
        assert!(refused(&[two, map, ("inter.broker.listener.name", "C")]));
        assert!(refused(&[("listeners", "")]));
        assert!(refused(&[("listeners", "BAD NAME://127.0.0.1:1")]));
        // A TLS listener without key material never comes up in plaintext.
        assert!(refused(&[
            ("listeners", "S://127.0.0.1:1"),
            ("listener.security.protocol.map", "S:SSL")
        ]));
        let many = (0..=MAX_LISTENERS)
            .map(|i| format!("L{i}://127.0.0.1:{}", 1000 + i))
            .collect::<Vec<_>>()
            .join(",");
        let map_all = (0..=MAX_LISTENERS)
            .map(|i| format!("L{i}:PLAINTEXT"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(refused(&[
            ("listeners", &many),
            ("listener.security.protocol.map", &map_all)
        ]));
    }

    #[test]
    fn overrides_name_a_listener_and_a_per_listener_setting() {
        let known = |s: &str| SETTINGS.iter().any(|k| k.name == s);
        assert!(is_override(
            "listener.name.client.ssl.keystore.location",
            known
        ));
        assert!(is_override(
            "listener.name.client.sasl.enabled.mechanisms",
            known
        ));
        assert!(!is_override("listener.name.client.num.partitions", known));
        assert!(!is_override("listener.name.client.ssl.no.such", known));
        assert!(!is_override("listener.name..ssl.keystore.location", known));
    }
}
