//! `server.kafka_version` (`--kafka-version`): the Apache Kafka release whose broker gregor
//! emulates. What each release advertised is in `handlers::releases`.

/// An Apache Kafka release whose broker gregor can emulate, ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    Kafka28,
    Kafka39,
    Kafka41,
    Kafka42,
}

impl Release {
    /// Every release, oldest first.
    pub const ALL: [Release; 4] = [Release::Kafka28, Release::Kafka39, Release::Kafka41, Release::Kafka42];

    /// "2.8", "3.9", "4.1" or "4.2"; a patch level ("2.8.2", "3.9.1") may follow, since only
    /// major.minor decides what a broker advertises.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !numeric(major) || !numeric(minor) || !parts.all(numeric) {
            return None;
        }
        match (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?) {
            (2, 8) => Some(Release::Kafka28),
            (3, 9) => Some(Release::Kafka39),
            (4, 1) => Some(Release::Kafka41),
            (4, 2) => Some(Release::Kafka42),
            _ => None,
        }
    }

    /// The release as major.minor ("3.9").
    pub fn name(self) -> &'static str {
        match self {
            Release::Kafka28 => "2.8",
            Release::Kafka39 => "3.9",
            Release::Kafka41 => "4.1",
            Release::Kafka42 => "4.2",
        }
    }
}
