//! One share-partition (KIP-932): which records of a topic partition a share group has
//! delivered, to whom, and what became of them. Modelled on Kafka 4.1's `SharePartition`.
//!
//! Offsets below the share-partition start offset (SPSO) are done. Offsets in
//! `[start, next)` that are records have an entry in `in_flight` until the start passes them;
//! offsets from `next` on have never been handed out. A record is `Available` (released, or its
//! acquisition lock ran out), `Acquired` by one member until a deadline, `Acknowledged`
//! (accepted) or `Archived` (rejected, a gap, or delivered `delivery_count_limit` times). The
//! start moves over a prefix of acknowledged and archived records, so `in_flight` never holds
//! more than `max_in_flight` records past it. Everything takes `now`; nothing reads a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Kafka's acknowledgement types (ShareFetch/ShareAcknowledge `AcknowledgeTypes`).
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired { member: String, deadline: Instant },
    Acknowledged,
    Archived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub state: RecordState,
    pub delivery_count: i16,
}

/// A range of offsets acquired by one fetch, all delivered the same number of times
/// (ShareFetch's `AcquiredRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// What a read of the log found: a batch's offsets and whether it is delivered at all (not a
/// control batch, and for read_committed groups not a batch of an aborted transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Never delivered: archived as soon as it is read.
    pub skip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("{0}")]
    InvalidRecordState(String),
    #[error("{0}")]
    InvalidRequest(String),
}

/// A record's state as kept across restarts (Kafka's `DeliveryState` codes: 0 available,
/// 2 acknowledged, 4 archived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistedState {
    Available,
    Acknowledged,
    Archived,
}

impl PersistedState {
    pub fn code(self) -> i8 {
        match self {
            Self::Available => 0,
            Self::Acknowledged => 2,
            Self::Archived => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(Self::Available),
            2 => Some(Self::Acknowledged),
            4 => Some(Self::Archived),
            _ => None,
        }
    }
}

/// Consecutive offsets in one state, delivered the same number of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub state: PersistedState,
    pub delivery_count: i16,
}

/// The limits a share-partition works within (the group's settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub lock_duration: Duration,
    pub delivery_count_limit: i16,
    pub max_in_flight: i64,
}

#[derive(Debug, Clone)]
pub struct SharePartition {
    start: i64,
    next: i64,
    in_flight: BTreeMap<i64, InFlight>,
}

impl SharePartition {
    /// A share-partition that starts delivering at `start` (from `share.auto.offset.reset`).
    pub fn new(start: i64) -> Self {
        Self { start, next: start, in_flight: BTreeMap::new() }
    }

    /// The share-partition start offset: every record before it is done.
    pub fn start_offset(&self) -> i64 {
        self.start
    }

    /// The first offset never handed out.
    pub fn next_offset(&self) -> i64 {
        self.next
    }

    pub fn record(&self, offset: i64) -> Option<&InFlight> {
        self.in_flight.get(&offset)
    }

    /// Records acquired, available again, or done but not yet passed by the start.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Where a fetch must start reading to find everything it may acquire: the first
    /// available record, or the first offset never handed out.
    pub fn read_from(&self) -> i64 {
        self.in_flight.iter().find(|(_, r)| r.state == RecordState::Available).map_or(self.next, |(o, _)| *o)
    }

    /// Whether a fetch could acquire anything now, given the partition's readable end.
    pub fn has_available(&self, end_offset: i64, limits: &Limits) -> bool {
        self.in_flight.values().any(|r| r.state == RecordState::Available)
            || (self.next < end_offset && self.next - self.start < limits.max_in_flight)
    }

    /// The earliest acquisition lock deadline, to wake a waiting fetch when it passes.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight
            .values()
            .filter_map(|r| match &r.state {
                RecordState::Acquired { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    /// The log lost records below `log_start` (retention, DeleteRecords): they are done.
    pub fn truncate_to(&mut self, log_start: i64) {
        if log_start <= self.start {
            return;
        }
        self.in_flight = self.in_flight.split_off(&log_start);
        self.start = log_start;
        self.next = self.next.max(log_start);
        self.advance();
    }

    /// Records whose acquisition lock ran out become available again, or archived once
    /// delivered `delivery_count_limit` times. Returns how many were released.
    pub fn expire(&mut self, now: Instant, limits: &Limits) -> usize {
        let mut released = 0;
        for r in self.in_flight.values_mut() {
            if matches!(&r.state, RecordState::Acquired { deadline, .. } if *deadline <= now) {
                r.state = release_state(r.delivery_count, limits);
                released += 1;
            }
        }
        if released > 0 {
            self.advance();
        }
        released
    }

    /// Acquires for `member` what it may take among `batches` (a read of the log from
    /// [`read_from`](Self::read_from) on, up to the readable end): available records and
    /// records never handed out, at most `max_records` of them, while the records past the
    /// start stay within `max_in_flight`. Batches to skip are archived, never delivered.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[BatchSpan],
        max_records: usize,
        now: Instant,
        limits: &Limits,
    ) -> Vec<Acquired> {
        let deadline = now + limits.lock_duration;
        let mut out: Vec<Acquired> = Vec::new();
        let mut taken = 0usize;
        let mut push = |offset: i64, count: i16| match out.last_mut() {
            Some(a) if a.last_offset + 1 == offset && a.delivery_count == count => a.last_offset = offset,
            _ => out.push(Acquired { first_offset: offset, last_offset: offset, delivery_count: count }),
        };
        'batches: for b in batches {
            if b.last_offset < self.start {
                continue;
            }
            if b.skip {
                // Markers are not records anyone consumes, and an aborted transaction's records
                // are not for read_committed groups: done as soon as they are seen.
                for o in b.base_offset.max(self.next)..=b.last_offset {
                    self.in_flight.insert(o, InFlight { state: RecordState::Archived, delivery_count: 0 });
                }
                self.next = self.next.max(b.last_offset + 1);
                continue;
            }
            for o in b.base_offset.max(self.start)..=b.last_offset {
                if taken >= max_records {
                    break 'batches;
                }
                if o < self.next {
                    if let Some(r) = self.in_flight.get_mut(&o) {
                        if r.state == RecordState::Available {
                            r.delivery_count = r.delivery_count.saturating_add(1);
                            r.state = RecordState::Acquired { member: member.to_string(), deadline };
                            push(o, r.delivery_count);
                            taken += 1;
                        }
                    }
                    continue;
                }
                if o - self.start >= limits.max_in_flight {
                    break 'batches;
                }
                self.in_flight.insert(
                    o,
                    InFlight {
                        state: RecordState::Acquired { member: member.to_string(), deadline },
                        delivery_count: 1,
                    },
                );
                self.next = o + 1;
                push(o, 1);
                taken += 1;
            }
        }
        self.advance();
        out
    }

    /// Applies one acknowledgement batch from `member`: `types` has one type for the whole
    /// range or one per offset. All or nothing: every offset must be a record `member` holds.
    pub fn acknowledge(
        &mut self,
        member: &str,
        first: i64,
        last: i64,
        types: &[i8],
        limits: &Limits,
    ) -> Result<(), AckError> {
        if first > last || first < 0 {
            return Err(AckError::InvalidRequest(format!(
                "The acknowledgement batch {first}-{last} is not a range of offsets."
            )));
        }
        let len = last - first + 1;
        if types.is_empty() || (types.len() != 1 && types.len() as i64 != len) {
            return Err(AckError::InvalidRequest(format!(
                "The acknowledgement batch {first}-{last} has {} acknowledge types; it needs 1 or {len}.",
                types.len()
            )));
        }
        if let Some(t) = types.iter().find(|t| !(ACK_GAP..=ACK_REJECT).contains(*t)) {
            return Err(AckError::InvalidRequest(format!("Unknown acknowledge type {t}.")));
        }
        // Only offsets handed out and not yet done can be held (the walk below would stop at the
        // first offset past them too; this says why in one message).
        if first < self.start || last >= self.next {
            return Err(AckError::InvalidRecordState(format!(
                "The offsets {first}-{last} are not all in flight: this share-partition has {}-{} in flight.",
                self.start,
                self.next - 1
            )));
        }
        for o in first..=last {
            match self.in_flight.get(&o).map(|r| &r.state) {
                Some(RecordState::Acquired { member: m, .. }) if m == member => {}
                // A gap may be acknowledged anywhere inside what the member fetched: there is
                // no record there to hold.
                None if o >= self.start && o < self.next && type_at(types, first, o) == ACK_GAP => {}
                _ => {
                    return Err(AckError::InvalidRecordState(format!(
                        "The record at offset {o} is not acquired by member {member}: its acquisition lock may have \
                         expired, or it was acknowledged already."
                    )))
                }
            }
        }
        for o in first..=last {
            let t = type_at(types, first, o);
            if let Some(r) = self.in_flight.get_mut(&o) {
                r.state = match t {
                    ACK_ACCEPT => RecordState::Acknowledged,
                    ACK_RELEASE => release_state(r.delivery_count, limits),
                    _ => RecordState::Archived,
                };
            }
        }
        self.advance();
        Ok(())
    }

    /// Everything `member` holds becomes available again (its share session closed, or it
    /// left the group). Returns how many records were released.
    pub fn release_member(&mut self, member: &str, limits: &Limits) -> usize {
        let mut released = 0;
        for r in self.in_flight.values_mut() {
            if matches!(&r.state, RecordState::Acquired { member: m, .. } if m == member) {
                r.state = release_state(r.delivery_count, limits);
                released += 1;
            }
        }
        self.advance();
        released
    }

    /// What a restart must keep: the start and the state of every record in flight, as runs of
    /// consecutive offsets in one state with one delivery count. A record acquired now is kept as
    /// available with the deliveries it had: its lock does not outlive the broker.
    pub fn state_batches(&self) -> Vec<StateBatch> {
        let mut out: Vec<StateBatch> = Vec::new();
        for (&o, r) in &self.in_flight {
            let state = match r.state {
                RecordState::Available | RecordState::Acquired { .. } => PersistedState::Available,
                RecordState::Acknowledged => PersistedState::Acknowledged,
                RecordState::Archived => PersistedState::Archived,
            };
            match out.last_mut() {
                Some(b) if b.last_offset + 1 == o && b.state == state && b.delivery_count == r.delivery_count => {
                    b.last_offset = o
                }
                _ => out.push(StateBatch { first_offset: o, last_offset: o, state, delivery_count: r.delivery_count }),
            }
        }
        out
    }

    /// A share-partition as [`state_batches`](Self::state_batches) kept it. Batches before
    /// `start`, out of order or overlapping, or reaching `max_in_flight` past the start end the
    /// restore there (the bytes come from disk): what follows counts as never delivered, so it
    /// is delivered again rather than lost.
    pub fn restore(start: i64, batches: &[StateBatch], max_in_flight: i64) -> Self {
        let mut sp = Self::new(start.max(0));
        for b in batches {
            if b.first_offset < sp.next || b.last_offset < b.first_offset || b.last_offset - sp.start >= max_in_flight {
                break;
            }
            let state = match b.state {
                PersistedState::Available => RecordState::Available,
                PersistedState::Acknowledged => RecordState::Acknowledged,
                PersistedState::Archived => RecordState::Archived,
            };
            for o in b.first_offset..=b.last_offset {
                sp.in_flight.insert(o, InFlight { state: state.clone(), delivery_count: b.delivery_count });
            }
            sp.next = b.last_offset + 1;
        }
        sp.advance();
        sp
    }

    /// Moves the start over the done prefix and forgets it.
    fn advance(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if !matches!(entry.get().state, RecordState::Acknowledged | RecordState::Archived) {
                break;
            }
            let o = *entry.key();
            entry.remove();
            self.start = self.start.max(o + 1);
        }
        match self.in_flight.keys().next() {
            // Offsets between the start and the first record in flight are not records (gaps).
            Some(&o) => self.start = self.start.max(o.min(self.next)),
            None => self.start = self.start.max(self.next),
        }
    }
}

fn type_at(types: &[i8], first: i64, offset: i64) -> i8 {
    if types.len() == 1 {
        types[0]
    } else {
        types[(offset - first) as usize]
    }
}

/// A released record is available again unless it was delivered as often as allowed.
fn release_state(delivery_count: i16, limits: &Limits) -> RecordState {
    if delivery_count >= limits.delivery_count_limit {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { lock_duration: Duration::from_secs(30), delivery_count_limit: 3, max_in_flight: 100 };

    fn batch(base: i64, last: i64) -> BatchSpan {
        BatchSpan { base_offset: base, last_offset: last, skip: false }
    }

    fn acq(first: i64, last: i64, count: i16) -> Acquired {
        Acquired { first_offset: first, last_offset: last, delivery_count: count }
    }

    #[test]
    fn two_members_never_get_the_same_record() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        let a = sp.acquire("a", &[batch(0, 4), batch(5, 9)], 6, now, &LIMITS);
        assert_eq!(a, vec![acq(0, 5, 1)]);
        // b reads from where a stopped, and the read may overlap what a holds.
        assert_eq!(sp.read_from(), 6);
        let b = sp.acquire("b", &[batch(5, 9)], 100, now, &LIMITS);
        assert_eq!(b, vec![acq(6, 9, 1)]);
        assert!(sp.acquire("c", &[batch(0, 9)], 100, now, &LIMITS).is_empty());
    }

    #[test]
    fn accepted_records_move_the_start_and_are_forgotten() {
        let now = Instant::now();
        let mut sp = SharePartition::new(10);
        sp.acquire("a", &[batch(10, 19)], 100, now, &LIMITS);
        sp.acknowledge("a", 12, 19, &[ACK_ACCEPT], &LIMITS).unwrap();
        assert_eq!(sp.start_offset(), 10, "10 and 11 are still held");
        sp.acknowledge("a", 10, 11, &[ACK_ACCEPT, ACK_REJECT], &LIMITS).unwrap();
        assert_eq!(sp.start_offset(), 20);
        assert_eq!(sp.in_flight_len(), 0);
    }

    #[test]
    fn released_records_go_to_the_next_fetch_with_a_higher_delivery_count() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        sp.acquire("a", &[batch(0, 3)], 100, now, &LIMITS);
        sp.acknowledge("a", 0, 3, &[ACK_ACCEPT, ACK_RELEASE, ACK_RELEASE, ACK_ACCEPT], &LIMITS).unwrap();
        assert_eq!(sp.start_offset(), 1);
        assert_eq!(sp.read_from(), 1);
        let b = sp.acquire("b", &[batch(0, 3)], 100, now, &LIMITS);
        assert_eq!(b, vec![acq(1, 2, 2)]);
    }

    #[test]
    fn a_lock_that_runs_out_releases_the_record_and_the_limit_archives_it() {
        let t0 = Instant::now();
        let mut sp = SharePartition::new(0);
        let mut now = t0;
        for delivery in 1..=3 {
            let got = sp.acquire("a", &[batch(0, 0)], 100, now, &LIMITS);
            assert_eq!(got, vec![acq(0, 0, delivery)]);
            assert_eq!(sp.expire(now + Duration::from_secs(29), &LIMITS), 0, "the lock still holds");
            now += LIMITS.lock_duration;
            assert_eq!(sp.expire(now, &LIMITS), 1);
        }
        // Delivered 3 times (the limit): archived, and the start moves past it.
        assert_eq!(sp.start_offset(), 1);
        assert!(sp.acquire("a", &[batch(0, 0)], 100, now, &LIMITS).is_empty());
    }

    #[test]
    fn only_the_holder_may_acknowledge_and_only_once() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        sp.acquire("a", &[batch(0, 1)], 100, now, &LIMITS);
        assert!(matches!(sp.acknowledge("b", 0, 0, &[ACK_ACCEPT], &LIMITS), Err(AckError::InvalidRecordState(_))));
        // All or nothing: offset 5 was never delivered, so 0 is not accepted either.
        assert!(sp.acknowledge("a", 0, 5, &[ACK_ACCEPT], &LIMITS).is_err());
        assert_eq!(
            sp.record(0).unwrap().state,
            RecordState::Acquired { member: "a".into(), deadline: now + LIMITS.lock_duration }
        );
        sp.acknowledge("a", 0, 1, &[ACK_ACCEPT], &LIMITS).unwrap();
        assert!(matches!(sp.acknowledge("a", 0, 0, &[ACK_ACCEPT], &LIMITS), Err(AckError::InvalidRecordState(_))));
        assert!(matches!(sp.acknowledge("a", 3, 2, &[ACK_ACCEPT], &LIMITS), Err(AckError::InvalidRequest(_))));
        assert!(matches!(sp.acknowledge("a", 0, 1, &[1, 1, 1], &LIMITS), Err(AckError::InvalidRequest(_))));
        // A range reaching past what was handed out is refused as a whole.
        sp.acquire("a", &[batch(2, 3)], 100, now, &LIMITS);
        assert!(matches!(
            sp.acknowledge("a", 2, i64::MAX, &[ACK_ACCEPT], &LIMITS),
            Err(AckError::InvalidRecordState(_))
        ));
    }

    #[test]
    fn a_member_that_goes_releases_what_it_holds() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        sp.acquire("a", &[batch(0, 4)], 100, now, &LIMITS);
        assert_eq!(sp.release_member("b", &LIMITS), 0);
        assert_eq!(sp.release_member("a", &LIMITS), 5);
        assert_eq!(sp.acquire("b", &[batch(0, 4)], 100, now, &LIMITS), vec![acq(0, 4, 2)]);
    }

    #[test]
    fn control_batches_are_never_delivered() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        let marker = BatchSpan { base_offset: 3, last_offset: 3, skip: true };
        let got = sp.acquire("a", &[batch(0, 2), marker, batch(4, 5)], 100, now, &LIMITS);
        assert_eq!(got, vec![acq(0, 2, 1), acq(4, 5, 1)]);
        sp.acknowledge("a", 0, 2, &[ACK_ACCEPT], &LIMITS).unwrap();
        assert_eq!(sp.start_offset(), 4);
    }

    #[test]
    fn in_flight_records_stay_within_the_window() {
        let now = Instant::now();
        let limits = Limits { max_in_flight: 4, ..LIMITS };
        let mut sp = SharePartition::new(0);
        assert_eq!(sp.acquire("a", &[batch(0, 9)], 100, now, &limits), vec![acq(0, 3, 1)]);
        assert!(sp.acquire("b", &[batch(4, 9)], 100, now, &limits).is_empty());
        sp.acknowledge("a", 0, 1, &[ACK_ACCEPT], &limits).unwrap();
        assert_eq!(sp.acquire("b", &[batch(4, 9)], 100, now, &limits), vec![acq(4, 5, 1)]);
    }

    #[test]
    fn records_removed_from_the_log_are_done() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        sp.acquire("a", &[batch(0, 9)], 100, now, &LIMITS);
        sp.truncate_to(6);
        assert_eq!(sp.start_offset(), 6);
        assert_eq!(sp.in_flight_len(), 4);
        sp.truncate_to(20);
        assert_eq!((sp.start_offset(), sp.next_offset(), sp.in_flight_len()), (20, 20, 0));
    }

    #[test]
    fn gaps_inside_a_fetched_range_may_be_acknowledged() {
        let now = Instant::now();
        let mut sp = SharePartition::new(0);
        sp.acquire("a", &[batch(0, 1), batch(5, 6)], 100, now, &LIMITS);
        sp.acknowledge(
            "a",
            0,
            6,
            &[ACK_ACCEPT, ACK_ACCEPT, ACK_GAP, ACK_GAP, ACK_GAP, ACK_ACCEPT, ACK_ACCEPT],
            &LIMITS,
        )
        .unwrap();
        assert_eq!(sp.start_offset(), 7);
    }
}
