//! A stream's documents for the API: the latest one (a [`watch`] channel: read it, or wait for
//! the next) and every one in order (a [`broadcast`] channel: a subscriber that falls more than
//! [`SUBSCRIBER_BACKLOG`] documents behind learns how many it missed, as
//! `RecvError::Lagged(n)`). Both work without a tokio runtime: the pipeline's thread publishes
//! with plain calls, and the HTTP layer awaits them (SSE, `?wait=true`), or tests block on them.
//! When the stream ends the hub closes: subscribers get `RecvError::Closed` after the last
//! document, waits on the latest end, and the latest document stays readable.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// Documents a subscriber may fall behind before it misses some.
pub const SUBSCRIBER_BACKLOG: usize = 256;

/// One LVA document out of the stream's `lvajson`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// Position among the stream's documents, from 0 (an SSE event id).
    pub seq: u64,
    /// The frame's timestamp on the stream's continuous timeline, ns.
    pub pts_ns: Option<u64>,
    /// The document, exactly as `lvajson` wrote it (`{"inferences":[...]}`).
    #[serde(skip)]
    pub json: Arc<str>,
}

type Senders = (watch::Sender<Option<Document>>, broadcast::Sender<Document>);

#[derive(Debug)]
pub struct Hub {
    senders: Mutex<Option<Senders>>,
    latest: watch::Receiver<Option<Document>>,
}

impl Default for Hub {
    fn default() -> Self {
        let (latest_tx, latest) = watch::channel(None);
        let (events, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        Hub {
            senders: Mutex::new(Some((latest_tx, events))),
            latest,
        }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Senders>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a document to the latest slot and to every subscriber; never blocks.
    pub fn publish(&self, doc: Document) {
        if let Some((latest, events)) = self.lock().as_ref() {
            // No subscriber is not an error.
            let _ = events.send(doc.clone());
            latest.send_replace(Some(doc));
        }
    }

    /// The stream ended: subscribers see the end, waits end.
    pub fn close(&self) {
        self.lock().take();
    }

    pub fn latest(&self) -> Option<Document> {
        self.latest.borrow().clone()
    }

    /// For `?wait=true`: `changed().await` returns when a newer document is published, or an
    /// error once the stream has ended.
    pub fn watch(&self) -> watch::Receiver<Option<Document>> {
        self.latest.clone()
    }

    /// Every document published from now on, in order; closed at once if the stream has ended.
    pub fn subscribe(&self) -> broadcast::Receiver<Document> {
        match self.lock().as_ref() {
            Some((_, events)) => events.subscribe(),
            None => broadcast::channel(1).1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::RecvError;

    fn doc(seq: u64) -> Document {
        Document {
            seq,
            pts_ns: Some(seq * 40),
            json: Arc::from(format!("{{\"inferences\":[{seq}]}}")),
        }
    }

    #[test]
    fn subscribers_get_every_document_in_order_then_the_end() {
        let hub = Hub::default();
        hub.publish(doc(0));
        let mut sub = hub.subscribe();
        for i in 1..=3 {
            hub.publish(doc(i));
        }
        hub.close();
        let got: Vec<u64> = std::iter::from_fn(|| sub.blocking_recv().ok())
            .map(|d| d.seq)
            .collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(hub.latest(), Some(doc(3)));
        assert!(matches!(
            hub.subscribe().blocking_recv(),
            Err(RecvError::Closed)
        ));
        hub.publish(doc(9));
        assert_eq!(hub.latest(), Some(doc(3)), "nothing after the end");
    }

    #[test]
    fn a_lagging_subscriber_learns_how_many_it_missed() {
        let hub = Hub::default();
        let mut sub = hub.subscribe();
        for i in 0..(SUBSCRIBER_BACKLOG as u64 + 10) {
            hub.publish(doc(i));
        }
        assert!(matches!(sub.blocking_recv(), Err(RecvError::Lagged(10))));
        assert_eq!(sub.blocking_recv().map(|d| d.seq), Ok(10));
    }

    #[test]
    fn the_latest_watch_sees_changes_and_the_end() {
        let hub = Hub::default();
        let mut w = hub.watch();
        assert!(!w.has_changed().unwrap());
        hub.publish(doc(0));
        assert!(w.has_changed().unwrap());
        assert_eq!(w.borrow_and_update().as_ref().map(|d| d.seq), Some(0));
        hub.close();
        assert!(w.has_changed().is_err(), "the sender is gone");
        assert_eq!(w.borrow().as_ref().map(|d| d.seq), Some(0));
    }
}
