//! The classic group protocol's states and which transitions between them are legal.

/// Kafka's group states. `Dead` groups are removed from the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name clients see in ListGroups and DescribeGroups.
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }

    /// Parses a state name (case-insensitive, as Kafka does).
    #[cfg(test)]
    pub fn from_kafka_name(name: &str) -> Option<Self> {
        [Self::Empty, Self::PreparingRebalance, Self::CompletingRebalance, Self::Stable, Self::Dead]
            .into_iter()
            .find(|s| s.kafka_name().eq_ignore_ascii_case(name))
    }

    /// The states a group may be in right before entering `self`.
    pub fn valid_previous(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Empty, Stable, CompletingRebalance],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Empty, PreparingRebalance, CompletingRebalance, Stable, Dead],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;
    use super::*;

    #[test]
    fn names_round_trip_and_transitions_are_kafkas() {
        for s in [Empty, PreparingRebalance, CompletingRebalance, Stable, Dead] {
            assert_eq!(GroupState::from_kafka_name(&s.kafka_name().to_lowercase()), Some(s));
        }
        assert!(Stable.valid_previous().contains(&CompletingRebalance));
        assert!(!Stable.valid_previous().contains(&Empty));
        assert!(!CompletingRebalance.valid_previous().contains(&Stable));
    }
}
