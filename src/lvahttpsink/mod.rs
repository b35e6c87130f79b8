//! `lvahttpsink`: POSTs each LVA document to an HTTP endpoint from a bounded queue, with retries.

pub mod retry;
