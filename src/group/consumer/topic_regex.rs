//! The regular expression of a regex subscription (KIP-848 `SubscribedTopicRegex`): Kafka
//! compiles it with Google's RE2/J and keeps the topics whose WHOLE name matches
//! (`Pattern.matcher(topic).matches()`). The `regex` crate implements the same RE2 syntax and
//! semantics (no backreferences, no lookaround, linear time); whole-name matching comes from
//! anchoring the compiled pattern with `\A(?:…)\z`.
//!
//! Never anchor before checking: the source is compiled on its own first, so that a source that
//! is only valid inside the wrapper (`a)|(b` becomes `\A(?:a)|(b)\z`) is refused, as RE2/J
//! refuses it.

/// Compiled programs above this size are refused (an expression that large cannot be meant to
/// name topics); it bounds the memory one member's regex costs the group.
const SIZE_LIMIT: usize = 1 << 20;

/// A subscription regex, compiled to match whole topic names.
#[derive(Debug, Clone)]
pub struct TopicRegex {
    anchored: regex::Regex,
}

impl TopicRegex {
    /// Compiles `source`; the error describes what is wrong with it, in one line.
    pub fn compile(source: &str) -> Result<Self, String> {
        let build = |pattern: &str| regex::RegexBuilder::new(pattern).size_limit(SIZE_LIMIT).build();
        build(source).map_err(|e| describe(&e))?;
        let anchored = build(&format!(r"\A(?:{source})\z")).map_err(|e| describe(&e))?;
        Ok(Self { anchored })
    }

    /// Whether the whole topic name matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.anchored.is_match(topic)
    }
}

/// The regex crate's syntax errors span several lines (the pattern, a caret, then
/// `error: <what>`); Kafka's message carries only the description.
fn describe(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .map_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "), str::to_string),
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than {limit} bytes, too large for a topic name pattern")
        }
        other => other.to_string(),
    }
}
