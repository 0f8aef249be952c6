//! Limits that keep one client from using up the server: a message rate per connection and a
//! number of open connections per address.
//!
//! Both are decisions, not tuning knobs to hide: a connection that sends faster than the rate
//! allows gets an `error` and is closed (its client reconnects and resyncs); an address with
//! too many open connections gets `429` at the upgrade. The defaults are far above what a
//! client sends and leave room for a whole venue behind one NAT address, so only floods hit
//! them. The message rate is not a few per keystroke: the sync protocol answers every message,
//! and an editor in a group where five people type five edits a second each sends the server
//! about 20 messages a second when both keep up, and 66 on average, in bursts, when they fall
//! behind and messages cross (measured with the load generator on a loaded machine). At the
//! earlier limit of 100 a second such editors were disconnected and lost their edits.
//!
//! A client answers every message that brings it changes, and a viewer following a meeting's
//! documents is brought changes as often as anyone types in them. Those answers are not counted:
//! the first message that brings a peer changes up to the document's current heads gives its
//! connection a token back (`TokenBucket::refund`, `Outbox::send_new_changes`). Once per heads:
//! a peer that asks for the same changes again and again earns nothing; only the document
//! changing, which its writers' own limits bound, does. Without this, viewers were disconnected
//! once the documents they follow changed about 300 times a second between them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The limits of a running server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Messages per second one connection may send on average.
    pub messages_per_sec: f64,
    /// Messages one connection may send at once after being quiet (a reconnect that requests
    /// every document of a meeting, an offline client catching up).
    pub message_burst: f64,
    /// Open sync connections from one IP address.
    pub connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            messages_per_sec: 300.0,
            message_burst: 1_500.0,
            connections_per_ip: 2_000,
        }
    }
}

/// A token bucket: `burst` tokens at most, refilled at `rate` per second; each message takes
/// one. Time is passed in, so that it is tested without clocks.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Gives back `n` tokens, up to the burst: for the answers to messages that brought the
    /// peer new changes.
    pub fn refund(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.burst);
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open connections per address.
#[derive(Default)]
pub struct AddressCounts {
    // std Mutex: held only to change a count, never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressCounts {
    /// Counts one more connection from `ip` unless it has `cap` open already. The count drops
    /// when the returned slot does, however the connection ends (even if the upgrade fails).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().expect("address counts lock");
        let n = open.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.clone(),
            ip,
        })
    }

    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().expect("address counts lock");
        open.get(&ip).copied().unwrap_or(0)
    }
}

/// One admitted connection; releases its place when dropped.
pub struct AddressSlot {
    counts: Arc<AddressCounts>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().expect("address counts lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, t0);
        assert!((0..5).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0), "the burst is spent");
        // A tenth of a second later, one more message is allowed, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(bucket.take(t1));
        assert!(!bucket.take(t1));
        // A long pause refills the bucket to its burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(t2)).count(), 5);
    }

    #[test]
    fn a_refund_gives_tokens_back_up_to_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, t0);
        assert!((0..5).all(|_| bucket.take(t0)));
        bucket.refund(2);
        assert_eq!((0..5).filter(|_| bucket.take(t0)).count(), 2);
        bucket.refund(100);
        assert_eq!((0..10).filter(|_| bucket.take(t0)).count(), 5);
    }

    #[test]
    fn an_address_gets_its_cap_and_its_places_back() {
        let counts = Arc::new(AddressCounts::default());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let a = counts.admit(ip, 2).unwrap();
        let _b = counts.admit(ip, 2).unwrap();
        assert!(counts.admit(ip, 2).is_none());
        assert!(
            counts.admit(other, 2).is_some(),
            "other addresses unaffected"
        );
        drop(a);
        assert_eq!(counts.open(ip), 1);
        assert!(counts.admit(ip, 2).is_some());
    }
}
