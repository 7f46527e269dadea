//! `brook.sasl.bootstrap.user`: the first SCRAM user of a new cluster.

use brook_raft::MetadataCommand;

use crate::broker::Broker;
use crate::security::scram;

/// Iterations of the credentials brook makes itself (Kafka's minimum and default).
const BOOTSTRAP_ITERATIONS: u32 = 4096;

/// `brook.sasl.bootstrap.user`: give the user SCRAM-SHA-256 and SCRAM-SHA-512 credentials if it
/// has none for a mechanism, so a new cluster can be logged in to. A password changed since is
/// left alone.
pub(super) async fn create(broker: &Broker) -> anyhow::Result<()> {
    let Some((user, password)) = &broker.config.sasl_bootstrap else {
        return Ok(());
    };
    for mechanism in [scram::SHA_256, scram::SHA_512] {
        if broker
            .metadata
            .scram_credential(user, mechanism.id)
            .is_some()
        {
            continue;
        }
        let salt: [u8; 16] = brook_raft::random_bytes()?;
        let salted = mechanism.salted_password(password.as_bytes(), &salt, BOOTSTRAP_ITERATIONS);
        let credential = mechanism.credential(&salted, &salt, BOOTSTRAP_ITERATIONS);
        broker
            .metadata
            .write(MetadataCommand::UpsertScramCredential {
                user: user.clone(),
                mechanism: mechanism.id,
                credential,
            })
            .await?;
        tracing::info!(%user, mechanism = mechanism.name, "created the bootstrap SCRAM user");
    }
    Ok(())
}
