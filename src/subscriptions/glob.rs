//! Subscription patterns: `/`-separated segments where `*` is exactly one segment, `**`
//! is zero or more, and any other segment is literal (`%2A` in it stands for a literal
//! `*`). Leading and trailing `/` and empty segments are ignored on both sides.

/// Whether stream path `path` matches `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<String> = segments(pattern)
        .map(|s| match s {
            "*" | "**" => s.to_string(),
            lit => lit.replace("%2A", "*").replace("%2a", "*"),
        })
        .collect();
    let pat: Vec<Seg<'_>> = pat
        .iter()
        .zip(segments(pattern))
        .map(|(lit, raw)| match raw {
            "*" => Seg::One,
            "**" => Seg::Any,
            _ => Seg::Lit(lit.as_str()),
        })
        .collect();
    let path: Vec<&str> = segments(path).collect();
    match_from(&pat, &path)
}

enum Seg<'a> {
    One,
    Any,
    Lit(&'a str),
}

fn segments(s: &str) -> impl Iterator<Item = &str> {
    s.split('/').filter(|p| !p.is_empty())
}

fn match_from(pat: &[Seg<'_>], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((Seg::Any, rest)) => (0..=path.len()).any(|i| match_from(rest, &path[i..])),
        Some((Seg::One, rest)) => !path.is_empty() && match_from(rest, &path[1..]),
        Some((Seg::Lit(l), rest)) => path.first() == Some(l) && match_from(rest, &path[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn star_is_one_segment_and_double_star_any_number() {
        assert!(matches("events/*", "events/a"));
        assert!(!matches("events/*", "events/a/b"));
        assert!(!matches("events/*", "events"));
        assert!(matches("events/**", "events"));
        assert!(matches("events/**", "events/a/b"));
        assert!(matches("**/x", "a/b/x"));
        assert!(matches("a/**/z", "a/z"));
        assert!(!matches("a/**/z", "a/b/y"));
        assert!(matches("/events/*/", "events/a"));
    }

    #[test]
    fn literals_match_exactly_and_percent_2a_is_a_literal_star() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/c"));
        assert!(matches("a/%2A", "a/*"));
        assert!(!matches("a/%2A", "a/x"));
    }
}
