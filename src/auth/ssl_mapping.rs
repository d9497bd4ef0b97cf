//! Kafka's `ssl.principal.mapping.rules`: from a client certificate's distinguished name to the
//! user name of its principal.
//!
//! The setting is a comma-separated list of rules, tried in order; the first that applies names
//! the user, and a name no rule applies to is refused (Kafka closes the connection).
//!
//! - `DEFAULT`: the distinguished name itself (`CN=alice,O=acme`).
//! - `RULE:pattern/replacement/`, optionally followed by `L` or `U`: applies when `pattern`
//!   matches the whole name; then every match of `pattern` in the name is replaced by
//!   `replacement` (`$1`, `${name}` are groups, `\x` is a literal `x`), and the result is
//!   lower- or upper-cased with `L` / `U`. Inside pattern and replacement `\` escapes the next
//!   character, so `\/` is a slash and `\,` a comma.
//!
//! Splitting follows Kafka's: a rule ends at the first comma after its closing slash and flag,
//! so patterns may contain commas; blank entries between commas are skipped; anything that is
//! not one of the forms above is an error at start naming it. Group references past the
//! number of groups (`$4` with three groups) are literal text, as in Kafka.
//!
//! Patterns are Java regular expressions in Kafka; gregor compiles them with the `regex`
//! crate, whose syntax agrees for everything mapping rules are usually made of (classes,
//! groups, lazy and greedy repetition, anchors). Look-around and back-references inside the
//! pattern are not available and are reported at start.

use std::fmt;

use regex::Regex;

/// The rules of one listener, parsed and compiled.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace(Box<Replace>),
}

#[derive(Debug, Clone)]
struct Replace {
    /// The pattern and replacement as written, for messages.
    pattern_text: String,
    replacement_text: String,
    /// The pattern, anchored at both ends: does it match the whole name?
    whole: Regex,
    /// The pattern as written, for the replacing pass.
    find: Regex,
    replacement: Vec<Piece>,
    case: Case,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    AsIs,
    Lower,
    Upper,
}

/// A rule that cannot be used; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "`{rule}` is not a mapping rule: expected DEFAULT or RULE:pattern/replacement/ (optionally followed by L or U)"
    )]
    Syntax { rule: String },
    #[error("the pattern of `{rule}` is not a regular expression gregor can use: {reason}")]
    Pattern { rule: String, reason: String },
    #[error("the replacement of `{rule}`: {reason}")]
    Replacement { rule: String, reason: String },
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        Self { rules: vec![Rule::Default] }
    }
}

impl SslPrincipalMapper {
    /// Parses the value of `ssl.principal.mapping.rules`.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let mut rules = Vec::new();
        for token in split_rules(text) {
            if token.is_empty() {
                continue;
            }
            rules.push(parse_rule(token)?);
        }
        Ok(Self { rules })
    }

    /// The user name for `dn`, or `None` when no rule applies.
    pub fn name_for(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|r| r.apply(dn))
    }

    /// Each rule in Kafka's notation (`RULE:pattern/replacement/L`), for messages and tests.
    pub fn describe(&self) -> Vec<String> {
        self.rules.iter().map(Rule::to_string).collect()
    }
}

/// True when `s[i..]` is blank up to a comma or the end: where a rule may stop.
fn ends_at(s: &str, i: usize) -> bool {
    let rest = s[i..].trim_start();
    rest.is_empty() || rest.starts_with(',')
}

/// The length of the pattern or replacement part that starts at `from`: up to the next slash
/// that is not escaped. `None` when there is no such slash (or a backslash escapes nothing).
fn part_end(s: &str, from: usize) -> Option<usize> {
    let mut chars = s[from..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' => return Some(from + i),
            '\\' => {
                chars.next()?;
            }
            _ => {}
        }
    }
    None
}

/// For text that starts `RULE:pattern/replacement/`: where that form ends, the `L` or `U` flag
/// included, and the two slashes' positions.
fn rule_form(s: &str) -> Option<(usize, usize, usize)> {
    s.strip_prefix("RULE:")?;
    let first = part_end(s, "RULE:".len())?;
    let second = part_end(s, first + 1)?;
    let mut end = second + 1;
    if matches!(s.as_bytes().get(end), Some(b'L' | b'U')) {
        end += 1;
    }
    Some((first, second, end))
}

/// Cuts the setting into rule texts (some empty) as Kafka does: a `DEFAULT` or a complete
/// `RULE:` form runs to the next comma after it, anything else to the next comma.
fn split_rules(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    loop {
        rest = rest.trim_start();
        let start = if rest.starts_with("DEFAULT") && ends_at(rest, "DEFAULT".len()) {
            "DEFAULT".len()
        } else if let Some((_, _, end)) = rule_form(rest) {
            end
        } else {
            0
        };
        // The end is always a stopping point, so this finds one.
        let len = (start..=rest.len()).filter(|&i| rest.is_char_boundary(i)).find(|&i| ends_at(rest, i));
        let len = len.unwrap_or(rest.len());
        out.push(&rest[..len]);
        match rest[len..].trim_start().strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    out
}

fn parse_rule(token: &str) -> Result<Rule, RuleError> {
    if token == "DEFAULT" {
        return Ok(Rule::Default);
    }
    let syntax = || RuleError::Syntax { rule: token.to_string() };
    let (first, second, end) = rule_form(token).ok_or_else(syntax)?;
    if end != token.len() {
        return Err(syntax());
    }
    let pattern_text = &token["RULE:".len()..first];
    let replacement_text = &token[first + 1..second];
    let case = match token.as_bytes().get(second + 1) {
        Some(b'L') => Case::Lower,
        Some(b'U') => Case::Upper,
        _ => Case::AsIs,
    };
    let bad_pattern = |e: regex::Error| RuleError::Pattern { rule: token.to_string(), reason: e.to_string() };
    let find = Regex::new(pattern_text).map_err(bad_pattern)?;
    let whole = Regex::new(&format!("^(?:{pattern_text})$")).map_err(bad_pattern)?;
    let replacement = parse_replacement(replacement_text, &find)
        .map_err(|reason| RuleError::Replacement { rule: token.to_string(), reason })?;
    Ok(Rule::Replace(Box::new(Replace {
        pattern_text: pattern_text.to_string(),
        replacement_text: replacement_text.to_string(),
        whole,
        find,
        replacement,
        case,
    })))
}

/// A Java replacement string against `pattern`'s groups, with Kafka's reading of group numbers
/// past the last group as literal text.
fn parse_replacement(text: &str, pattern: &Regex) -> Result<Vec<Piece>, String> {
    let groups = pattern.captures_len() - 1;
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or("it ends in a backslash that escapes nothing")?),
            '$' => match chars.peek().copied() {
                Some('{') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let index = pattern
                        .capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| format!("`${{{name}}}` names no group of the pattern"))?;
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Group(index));
                }
                Some(d @ '0'..='9') => {
                    let first = d as usize - '0' as usize;
                    // Kafka turns a reference to a group the pattern lacks into literal text.
                    if groups > 0 && first > groups {
                        literal.push('$');
                        continue;
                    }
                    if first > groups {
                        return Err(format!("`${first}`: the pattern has no groups"));
                    }
                    chars.next();
                    let mut index = first;
                    // Java reads as many digits as still name a group.
                    while let Some(d @ '0'..='9') = chars.peek().copied() {
                        let longer = index * 10 + (d as usize - '0' as usize);
                        if longer > groups {
                            break;
                        }
                        index = longer;
                        chars.next();
                    }
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Group(index));
                }
                _ => return Err("`$` must be followed by a group number or {name} (write `\\$` for a dollar)".into()),
            },
            _ => literal.push(c),
        }
    }
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Text(std::mem::take(literal)));
    }
}

impl Rule {
    fn apply(&self, dn: &str) -> Option<String> {
        let r = match self {
            Rule::Default => return Some(dn.to_string()),
            Rule::Replace(r) => r,
        };
        if !r.whole.is_match(dn) {
            return None;
        }
        // Replace every match, as Java's replaceAll does: after an empty match the search
        // moves one character on, after any other it resumes where the match ended (where an
        // empty match may follow).
        let mut out = String::with_capacity(dn.len());
        let mut copied = 0;
        let mut from = 0;
        let mut locs = r.find.capture_locations();
        while from <= dn.len() {
            let Some(m) = r.find.captures_read_at(&mut locs, dn, from) else { break };
            out.push_str(&dn[copied..m.start()]);
            for piece in &r.replacement {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Group(i) => {
                        if let Some((s, e)) = locs.get(*i) {
                            out.push_str(&dn[s..e]);
                        }
                    }
                }
            }
            copied = m.end();
            from =
                if m.is_empty() { m.end() + dn[m.end()..].chars().next().map_or(1, char::len_utf8) } else { m.end() };
        }
        out.push_str(&dn[copied..]);
        Some(match r.case {
            Case::AsIs => out,
            Case::Lower => out.to_lowercase(),
            Case::Upper => out.to_uppercase(),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Replace(r) => {
                write!(f, "RULE:{}/{}", r.pattern_text, r.replacement_text)?;
                match r.case {
                    Case::AsIs => Ok(()),
                    Case::Lower => f.write_str("/L"),
                    Case::Upper => f.write_str("/U"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
