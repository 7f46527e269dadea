//! The client side of SASL for brook's admin CLI: PLAIN, and SCRAM-SHA-256/512 with the
//! server's signature checked (a node that does not hold the credential is not trusted).

use anyhow::bail;

use super::Client;
use crate::security::scram::{self, ClientExchange};

/// A user and the mechanism to log in with.
#[derive(Clone)]
pub struct Login {
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({} as {})", self.mechanism, self.user)
    }
}

impl Login {
    /// Authenticates `client`'s fresh connection.
    pub async fn run(&self, client: &mut Client) -> anyhow::Result<()> {
        client.sasl_handshake(&self.mechanism).await?;
        if self.mechanism == "PLAIN" {
            let message = format!("\0{}\0{}", self.user, self.password);
            client.sasl_round(message.into_bytes()).await?;
            return Ok(());
        }
        let Some(mechanism) = scram::by_name(&self.mechanism) else {
            bail!(
                "sasl.mechanism {} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
                self.mechanism
            );
        };
        let (mut exchange, first) = ClientExchange::start(mechanism, &self.user, &self.password)?;
        let server_first = client.sasl_round(first).await?;
        let last = exchange.answer(&server_first)?;
        let server_final = client.sasl_round(last).await?;
        exchange.verify(&server_final)
    }
}
