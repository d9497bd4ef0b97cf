//! A connection to the coordination store that nothing waits on for ever.
//!
//! PostgreSQL can stop answering without refusing: a server stopped or swamped, a network that
//! drops packets rather than resetting connections, a lock another session holds. A broker that
//! waited on it without bound would keep admin requests, Metadata look-ups and commits
//! unanswered past every client's timeout, and keep its ticks (and the locks they hold) stuck
//! for as long as the kernel takes to give up on the socket — many minutes.
//!
//! So every use of a [`Connection`] ([`Connection::call`]) is refused with
//! [`StoreError::TimedOut`] once it ran `timeout` (`cluster.store_timeout_ms`), waiting for the
//! connection included. The connection it ran on is then spoiled: its next user asks PostgreSQL
//! to cancel what may still run there (a statement waiting on a lock would otherwise keep the
//! row locks of its transaction), drops it, and connects anew, the connect bounded by the same
//! timeout. A call whose outcome is unknown that way is, for its caller, the same as a
//! connection cut while the call was under way: the data path rebuilds the partition from the
//! store before it serves it again, and an admin request is answered REQUEST_TIMED_OUT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::store::{Store, StoreError};

pub struct Connection {
    url: String,
    timeout: Duration,
    slot: Mutex<Option<Store>>,
    /// A call ran past the timeout: the next user replaces the connection.
    spoiled: AtomicBool,
}

impl Connection {
    /// A connection to `url`, made on first use.
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self { url: url.to_string(), timeout, slot: Mutex::new(None), spoiled: AtomicBool::new(false) }
    }

    /// Runs `work` on the connection, for at most the timeout from now (waiting for the
    /// connection, or for a new one, included). `what` names the work in the error.
    pub async fn call<T>(
        &self,
        what: &'static str,
        work: impl AsyncFnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let bounded = async {
            let mut store = self.get().await?;
            work(&mut store).await
        };
        match tokio::time::timeout(self.timeout, bounded).await {
            Ok(done) => done,
            Err(_) => {
                self.spoiled.store(true, Ordering::Release);
                Err(StoreError::TimedOut { what, after: self.timeout })
            }
        }
    }

    /// Waits, at most the timeout, until nobody uses the connection (`what`: the use waited
    /// for, named in the error).
    pub async fn settled(&self, what: &'static str) -> Result<(), StoreError> {
        match tokio::time::timeout(self.timeout, self.slot.lock()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::TimedOut { what, after: self.timeout }),
        }
    }

    /// The connection, made first when there is none, it broke, or it was spoiled.
    async fn get(&self) -> Result<MappedMutexGuard<'_, Store>, StoreError> {
        let mut slot = self.slot.lock().await;
        if self.spoiled.swap(false, Ordering::AcqRel) {
            if let Some(old) = slot.take() {
                let cancel = old.cancel_token();
                drop(old);
                let timeout = self.timeout;
                tokio::spawn(async move {
                    // Ends what may still run for the dropped connection and releases its
                    // locks; PostgreSQL notices a closed connection only once it answers.
                    let _ = tokio::time::timeout(timeout, cancel.cancel_query(tokio_postgres::NoTls)).await;
                });
            }
        }
        if slot.as_ref().is_none_or(Store::is_closed) {
            if slot.is_some() {
                tracing::info!("connecting to the coordination store again");
            }
            *slot = Some(Store::connect_within(&self.url, self.timeout).await?);
        }
        MutexGuard::try_map(slot, Option::as_mut).map_err(|_| StoreError::NotConnected)
    }

    /// Holds the connection (connected) until the guard is dropped: for tests that make
    /// others wait on it.
    #[cfg(test)]
    pub async fn hold(&self) -> MappedMutexGuard<'_, Store> {
        self.get().await.expect("the store answers")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Connection;
    use crate::cluster::store::StoreError;
    use crate::cluster::testing::PgServer;

    #[tokio::test]
    async fn a_call_past_the_timeout_is_refused_and_what_it_left_waiting_is_cancelled() {
        let Some(pg) = PgServer::start() else { return };
        let conn = Connection::new(&pg.url, Duration::from_millis(500));
        conn.call("the schema migrations", async |s| s.migrate().await).await.unwrap();
        let (mut db, session) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(session);
        let holder = db.transaction().await.unwrap();
        holder.batch_execute("LOCK TABLE brokers IN ACCESS EXCLUSIVE MODE").await.unwrap();

        let asked = Instant::now();
        let stuck = conn.call("a look-up of brokers", async |s| s.live_brokers().await);
        let refused = tokio::time::timeout(Duration::from_secs(10), stuck).await.expect("the call was not bounded");
        assert!(matches!(refused, Err(StoreError::TimedOut { .. })), "{refused:?}");
        assert!(asked.elapsed() < Duration::from_secs(5), "refused after {:?}", asked.elapsed());
        let message = refused.unwrap_err().to_string();
        assert_eq!(message, "PostgreSQL did not answer a look-up of brokers within 0.5 s");

        // The next use does not queue behind the statement left waiting on the lock: it runs on
        // a new connection, and that statement is cancelled (releasing whatever it held).
        let read = conn.call("a read of a document", async |s| s.document("acls").await).await;
        assert_eq!(read.unwrap(), (0, String::new()));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let waiting: i64 = holder
                .query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", &[])
                .await
                .unwrap()
                .get(0);
            if waiting == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the timed-out statement still waits on the lock");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        holder.rollback().await.unwrap();
        assert!(conn.call("a look-up of brokers", async |s| s.live_brokers().await).await.unwrap().is_empty());
    }
}
