//! Idempotency-Key handling shared by every face: the first response to a key is stored and
//! replayed byte for byte for 24 hours; a different request under the same key is refused; a
//! duplicate arriving while the first still runs gets a conflict.

use crate::{Caller, Paygate};
use paygate_domain::{Problem, ProblemKind};
use paygate_store::IdempotencyBegin;
use sha2::{Digest, Sha256};

pub const MAX_KEY_LENGTH: usize = 255;

pub enum Idempotent {
    /// Run the request, then call [`Paygate::idempotency_finish`].
    Run,
    /// Send this stored response again.
    Replay { status: u16, body: Vec<u8> },
}

impl Paygate {
    pub async fn idempotency_start(
        &self,
        caller: &Caller,
        key: &str,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> Result<Idempotent, Problem> {
        if key.is_empty() || key.len() > MAX_KEY_LENGTH {
            return Err(Problem::invalid(
                "Idempotency-Key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters."),
            ));
        }
        let mut fingerprint = Sha256::new();
        for part in [method.as_bytes(), b" ", uri.as_bytes(), b"\n", body] {
            fingerprint.update(part);
        }
        match self.store.idempotency_begin(&caller.scope, key, &fingerprint.finalize(), self.now()).await? {
            IdempotencyBegin::Started => Ok(Idempotent::Run),
            IdempotencyBegin::Replay { status, body } => Ok(Idempotent::Replay { status, body }),
            IdempotencyBegin::Mismatch => Err(Problem::new(
                ProblemKind::Idempotency,
                "idempotency_key_reused",
                "Keys for idempotent requests can only be used with the same parameters they were first used \
                 with. Use a new Idempotency-Key for a different request.",
            )
            .with_param("Idempotency-Key")),
            IdempotencyBegin::InFlight => Err(Problem::conflict(
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry after it completes.",
            )),
        }
    }

    /// Stores the response for replay, or frees the key after a server-side failure so a
    /// retry can run again.
    pub async fn idempotency_finish(
        &self,
        caller: &Caller,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), Problem> {
        if status >= 500 {
            self.store.idempotency_release(&caller.scope, key).await
        } else {
            self.store.idempotency_complete(&caller.scope, key, status, body).await
        }
    }
}
