//! The search query language: lexer, parser and compiler. Pure; no I/O.
//!
//! One grammar serves two dialects:
//! - **filter** (`GET /v1/stream/{name}?filter=`): fielded clauses only
//!   (`field:value`, `field:>=v`, `has:field`);
//! - **search** (`_search`, `_aggregate`'s `q`, rollup `include`): also bare words and
//!   quoted phrases over the default text fields, and prefix matches (`value*`).
//!
//! ```text
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*          (juxtaposition is AND)
//! unary   := ("NOT" | "-") unary | primary
//! primary := "(" or ")" | word ":" [op] value | "has" ":" word | bare
//! op      := "=" | ">" | ">=" | "<" | "<="
//! ```
//!
//! Keywords are case-insensitive. A quoted string (`"..."`, `\` escapes the next
//! character) is a value or a phrase. The dialects keep the original's error messages,
//! which clients see in 400 bodies.

use super::config::{FieldConfig, FieldKind, Normalizer, SearchConfig};
use super::eval::{analyze, canonical_exact_str, Canon};

/// Which of the two dialects (they differ in what they accept and in their messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Filter,
    Search,
}

impl Dialect {
    /// The noun the original's messages use.
    fn noun(self) -> &'static str {
        match self {
            Dialect::Filter => "filter",
            Dialect::Search => "search query",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Colon,
    Op(CompareOp),
    Minus,
}

/// A comparison of a fielded clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// The parsed expression, before field names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Has(String),
    Field {
        field: String,
        op: CompareOp,
        value: String,
        quoted: bool,
    },
    /// A bare word or quoted phrase (search dialect only).
    Bare {
        value: String,
        quoted: bool,
    },
}

fn tokenize(input: &str, d: Dialect) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        match ch {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ':' => {
                out.push(Token::Colon);
                i += 1;
            }
            '-' => {
                out.push(Token::Minus);
                i += 1;
            }
            '>' | '<' | '=' => {
                let eq_next = chars.get(i + 1) == Some(&'=');
                let op = match (ch, eq_next) {
                    ('>', true) => CompareOp::Gte,
                    ('<', true) => CompareOp::Lte,
                    ('>', false) => CompareOp::Gt,
                    ('<', false) => CompareOp::Lt,
                    _ => CompareOp::Eq,
                };
                i += if ch != '=' && eq_next { 2 } else { 1 };
                out.push(Token::Op(op));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => {
                            let Some(&next) = chars.get(i + 1) else {
                                return Err(match d {
                                    Dialect::Filter => "unterminated escape in filter string",
                                    Dialect::Search => "unterminated escape in query string",
                                }
                                .into());
                            };
                            s.push(next);
                            i += 2;
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    return Err(format!("unterminated quoted string in {}", d.noun()));
                }
                i += 1;
                out.push(Token::Str(s));
            }
            _ => {
                let start = i;
                while i < chars.len() {
                    let c = chars[i];
                    if c.is_whitespace() || matches!(c, '(' | ')' | ':' | '>' | '<' | '=') {
                        break;
                    }
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    d: Dialect,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.to_uppercase() == kw)
    }

    fn take_value(&mut self) -> Option<(String, bool)> {
        let r = match self.peek()? {
            Token::Word(w) => (w.clone(), false),
            Token::Str(s) => (s.clone(), true),
            _ => return None,
        };
        self.pos += 1;
        Some(r)
    }

    fn parse(mut self) -> Result<Expr, String> {
        let e = self.or()?;
        if !self.at_end() {
            return Err(format!("unexpected token in {}", self.d.noun()));
        }
        Ok(e)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("OR") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while !self.at_end() && self.peek() != Some(&Token::RParen) && !self.peek_word("OR") {
            if self.peek_word("AND") {
                self.pos += 1;
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("NOT") || self.peek() == Some(&Token::Minus) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let noun = self.d.noun();
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.peek() != Some(&Token::RParen) {
                return Err(format!("missing ')' in {noun}"));
            }
            self.pos += 1;
            return Ok(e);
        }
        let Some((word, quoted)) = self.take_value() else {
            return Err(format!("expected clause in {noun}"));
        };
        let fielded = !quoted && self.peek() == Some(&Token::Colon);
        if !fielded {
            return match self.d {
                Dialect::Search => Ok(Expr::Bare {
                    value: word,
                    quoted,
                }),
                Dialect::Filter if quoted => Err("expected field name in filter".into()),
                Dialect::Filter => Err("expected ':' in filter clause".into()),
            };
        }
        self.pos += 1; // ':'
        if word == "has" {
            return match self.take_value() {
                Some((f, false)) => Ok(Expr::Has(f)),
                _ => Err("has: requires a field name".into()),
            };
        }
        if word == "contains" && self.d == Dialect::Search {
            return Err("contains: is not supported on _search yet".into());
        }
        let mut op = CompareOp::Eq;
        if let Some(Token::Op(o)) = self.peek() {
            op = *o;
            self.pos += 1;
        }
        let Some((value, vquoted)) = self.take_value() else {
            return Err(match self.d {
                Dialect::Filter => "expected value in filter clause".into(),
                Dialect::Search => "expected value in fielded search clause".into(),
            });
        };
        Ok(Expr::Field {
            field: word,
            op,
            value,
            quoted: vquoted,
        })
    }
}

/// Parses an expression (no field resolution).
pub fn parse(input: &str, d: Dialect) -> Result<Expr, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(match d {
            Dialect::Filter => "filter must not be empty".into(),
            Dialect::Search => "q must not be empty".into(),
        });
    }
    let tokens = tokenize(trimmed, d)?;
    if tokens
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.is_empty()))
    {
        return Err(format!("invalid {} syntax", d.noun()));
    }
    Parser { tokens, pos: 0, d }.parse()
}

/// A text target: a field searched by bare words, and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTarget {
    pub field: String,
    pub kind: FieldKind,
    /// A keyword target with the `lowercase_v1` normaliser.
    pub lowercase: bool,
    pub boost: f64,
}

/// A compiled query: field names resolved (aliases included) and values canonicalised.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    /// The field has a value (filter: a canonical one; search: any).
    Has {
        field: String,
    },
    /// A typed or keyword comparison against canonical values.
    Compare {
        field: String,
        kind: FieldKind,
        op: CompareOp,
        value: Canon,
    },
    /// A keyword equal to (or, with `prefix`, starting with) a canonical value.
    Keyword {
        field: String,
        value: String,
        prefix: bool,
    },
    /// Analysed text over one or more fields.
    Text {
        fields: Vec<TextTarget>,
        tokens: Vec<String>,
        phrase: bool,
        prefix: bool,
    },
}

impl Query {
    /// Whether a text clause contributes a relevance score.
    pub fn has_text(&self) -> bool {
        match self {
            Query::And(a, b) | Query::Or(a, b) => a.has_text() || b.has_text(),
            Query::Not(e) => e.has_text(),
            Query::Text { .. } => true,
            _ => false,
        }
    }

    /// Every field the query reads.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Query::And(a, b) | Query::Or(a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Query::Not(e) => e.fields(out),
            Query::Has { field } | Query::Compare { field, .. } | Query::Keyword { field, .. } => {
                if !out.contains(field) {
                    out.push(field.clone());
                }
            }
            Query::Text { fields, .. } => {
                for t in fields {
                    if !out.contains(&t.field) {
                        out.push(t.field.clone());
                    }
                }
            }
        }
    }
}

/// Parses and compiles a `filter=` expression against a stream's search configuration.
pub fn compile_filter(search: Option<&SearchConfig>, input: &str) -> Result<Query, String> {
    let expr = parse(input, Dialect::Filter)?;
    filter_node(search, &expr)
}

fn filter_node(search: Option<&SearchConfig>, e: &Expr) -> Result<Query, String> {
    Ok(match e {
        Expr::And(a, b) => Query::And(
            Box::new(filter_node(search, a)?),
            Box::new(filter_node(search, b)?),
        ),
        Expr::Or(a, b) => Query::Or(
            Box::new(filter_node(search, a)?),
            Box::new(filter_node(search, b)?),
        ),
        Expr::Not(x) => Query::Not(Box::new(filter_node(search, x)?)),
        Expr::Has(name) => {
            let (field, cfg) = search
                .and_then(|s| s.field(name))
                .ok_or_else(|| format!("filter field {name} is not indexed"))?;
            if !cfg.exists && !cfg.exact && !cfg.column {
                return Err(format!("filter field {name} does not support has:"));
            }
            Query::Has {
                field: field.to_string(),
            }
        }
        Expr::Field {
            field: name,
            op,
            value,
            ..
        } => {
            let (field, cfg) = search
                .and_then(|s| s.field(name))
                .ok_or_else(|| format!("filter field {name} is not indexed"))?;
            let canon = match cfg.kind {
                // A `""` value of a float field is 0, as `Number("")` in the original.
                FieldKind::Float if value.trim().is_empty() => Some(Canon::Float(0.0)),
                FieldKind::Text => None,
                _ => canonical_exact_str(cfg, value),
            };
            let Some(canon) = canon else {
                return Err("invalid value for filter field".into());
            };
            if *op != CompareOp::Eq && !matches!(canon, Canon::Int(_) | Canon::Float(_)) {
                return Err("comparison operator not supported for filter field".into());
            }
            if *op != CompareOp::Eq && !cfg.column {
                return Err(format!("filter field {name} does not support comparisons"));
            }
            if *op == CompareOp::Eq && !cfg.exact && !cfg.column {
                return Err(format!(
                    "filter field {name} does not support equality filters"
                ));
            }
            Query::Compare {
                field: field.to_string(),
                kind: cfg.kind,
                op: *op,
                value: canon,
            }
        }
        Expr::Bare { .. } => return Err("expected ':' in filter clause".into()),
    })
}

/// Parses and compiles a search query (`q`) against a stream's search configuration.
pub fn compile_search(search: Option<&SearchConfig>, input: &str) -> Result<Query, String> {
    let search = search.ok_or("search is not configured for this stream")?;
    let expr = parse(input, Dialect::Search)?;
    search_node(search, &expr)
}

fn search_node(s: &SearchConfig, e: &Expr) -> Result<Query, String> {
    Ok(match e {
        Expr::And(a, b) => Query::And(Box::new(search_node(s, a)?), Box::new(search_node(s, b)?)),
        Expr::Or(a, b) => Query::Or(Box::new(search_node(s, a)?), Box::new(search_node(s, b)?)),
        Expr::Not(x) => Query::Not(Box::new(search_node(s, x)?)),
        Expr::Has(name) => {
            let (field, cfg) = s
                .field(name)
                .ok_or_else(|| format!("unknown search field {name}"))?;
            if !cfg.exists && !cfg.exact && !cfg.column && cfg.kind != FieldKind::Text {
                return Err(format!("search field {name} does not support has:"));
            }
            Query::Has {
                field: field.to_string(),
            }
        }
        Expr::Field {
            field: name,
            op,
            value,
            quoted,
        } => search_field(s, name, *op, value, *quoted)?,
        Expr::Bare { value, quoted } => text_clause(default_fields(s)?, value, *quoted)?,
    })
}

fn search_field(
    s: &SearchConfig,
    name: &str,
    op: CompareOp,
    value: &str,
    quoted: bool,
) -> Result<Query, String> {
    let (field, cfg) = s
        .field(name)
        .ok_or_else(|| format!("unknown search field {name}"))?;
    match cfg.kind {
        FieldKind::Integer | FieldKind::Float | FieldKind::Date | FieldKind::Bool => {
            if !cfg.column && op != CompareOp::Eq {
                return Err(format!("search field {name} does not support comparisons"));
            }
            if !cfg.column && !cfg.exact {
                return Err(format!("search field {name} does not support equality"));
            }
            let canon = canonical_exact_str(cfg, value)
                .ok_or_else(|| "invalid value for search field".to_string())?;
            if op != CompareOp::Eq && matches!(canon, Canon::Str(_)) {
                return Err("comparison operator is only supported on typed column fields".into());
            }
            Ok(Query::Compare {
                field: field.to_string(),
                kind: cfg.kind,
                op,
                value: canon,
            })
        }
        FieldKind::Keyword => {
            if op != CompareOp::Eq {
                return Err(format!("search field {name} does not support comparisons"));
            }
            let prefix = value.ends_with('*') && value.chars().count() > 1;
            if prefix && !cfg.prefix {
                return Err(format!(
                    "search field {name} does not support prefix queries"
                ));
            }
            if !prefix && !cfg.exact {
                return Err(format!(
                    "search field {name} does not support exact queries"
                ));
            }
            let raw = if prefix {
                &value[..value.len() - 1]
            } else {
                value
            };
            let Some(Canon::Str(v)) = canonical_exact_str(cfg, raw) else {
                return Err(format!("invalid keyword value for {name}"));
            };
            Ok(Query::Keyword {
                field: field.to_string(),
                value: v,
                prefix,
            })
        }
        FieldKind::Text => {
            if op != CompareOp::Eq {
                return Err(format!("search field {name} does not support comparisons"));
            }
            text_clause(
                vec![TextTarget {
                    field: field.to_string(),
                    kind: cfg.kind,
                    lowercase: false,
                    boost: 1.0,
                }],
                value,
                quoted,
            )
        }
    }
}

fn default_fields(s: &SearchConfig) -> Result<Vec<TextTarget>, String> {
    let mut out = Vec::new();
    if let Some(defaults) = s.default_fields.as_ref().filter(|d| !d.is_empty()) {
        for d in defaults {
            let (field, cfg) = s
                .field(&d.field)
                .ok_or_else(|| format!("search default field {} is not defined", d.field))?;
            if !matches!(cfg.kind, FieldKind::Text | FieldKind::Keyword) {
                return Err(format!(
                    "search default field {} must be text or keyword",
                    d.field
                ));
            }
            out.push(TextTarget {
                field: field.to_string(),
                kind: cfg.kind,
                lowercase: cfg.normalizer == Some(Normalizer::LowercaseV1),
                boost: d.boost.unwrap_or(1.0),
            });
        }
        return Ok(out);
    }
    for (name, cfg) in &s.fields {
        if cfg.kind == FieldKind::Text {
            out.push(TextTarget {
                field: name.clone(),
                kind: cfg.kind,
                lowercase: false,
                boost: 1.0,
            });
        }
    }
    if out.is_empty() {
        return Err("search.defaultFields must include at least one text or keyword field".into());
    }
    Ok(out)
}

fn text_clause(fields: Vec<TextTarget>, raw: &str, quoted: bool) -> Result<Query, String> {
    let prefix = raw.ends_with('*') && raw.chars().count() > 1;
    let text = if prefix { &raw[..raw.len() - 1] } else { raw };
    let normalized = text.trim();
    if normalized.is_empty() {
        return Err("search text clause must not be empty".into());
    }
    let mut tokens = Vec::new();
    for t in &fields {
        if t.kind == FieldKind::Keyword {
            // The first keyword target decides, as in the original.
            tokens = vec![if t.lowercase {
                normalized.to_lowercase()
            } else {
                normalized.to_string()
            }];
            break;
        }
        tokens = analyze(normalized);
        if !tokens.is_empty() {
            break;
        }
    }
    if tokens.is_empty() {
        return Err("search text clause did not produce any searchable tokens".into());
    }
    Ok(Query::Text {
        fields,
        tokens,
        phrase: quoted,
        prefix,
    })
}

/// A field's configuration by resolved name.
pub fn field_config<'a>(s: &'a SearchConfig, field: &str) -> Option<&'a FieldConfig> {
    s.fields.iter().find(|(k, _)| k == field).map(|(_, v)| v)
}
