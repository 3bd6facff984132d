//! Feature flags: their definitions in the config, validation that names the bad field, and
//! evaluation against a context. Evaluation is pure: it reads the parsed config and the
//! context, takes no storage port and does no I/O.
//!
//! A flag is either a boolean (on or off for everyone, as it always was) or an object:
//!
//! ```json
//! {"variants": {"on": true, "off": false},
//!  "defaultVariant": "off",
//!  "prerequisites": {"newCheckout": ["on"]},
//!  "rules": [{"when": {"country": {"in": ["NL", "BE"]}}, "variant": "on"}],
//!  "rollout": {"on": 30, "off": 70},
//!  "enabled": true,
//!  "schedule": [{"at": 1767225600000, "enabled": true}]}
//! ```
//!
//! A `schedule` changes the flag by the clock (`EvalContext::now`), reading nothing: from
//! each entry's `at` (milliseconds since the epoch) the flag is `enabled` as the entry says
//! (before the first entry with `enabled`, the opposite of it: a schedule that starts by
//! switching on is off until then) and answers from the definition the entry `set`s, if any.
//! `enabled: false` is the kill switch: it wins over every entry. Once entries took effect,
//! [`FlagDef::settled`] gives the flag that serves the same with them removed, which the
//! history records ([`crate::domain::versions::settle`]).
//!
//! Evaluation, in order, with the definition in effect: a disabled flag (or one its schedule
//! has off) answers `defaultVariant` (`DISABLED`); else, when
//! a prerequisite flag (in name order), evaluated for the same context, answers none of its
//! listed variants (or cannot be evaluated), `defaultVariant` (`DEFAULT`, naming that
//! prerequisite); else the
//! first rule whose conditions all hold (`TARGETING_MATCH`); else the rollout, by sticky
//! bucketing on `targetingKey` ([`crate::domain::bucket`], `SPLIT`); else `defaultVariant`
//! (`STATIC` for a flag without prerequisites, rules or rollout, else `DEFAULT`). A
//! condition on an attribute the context does not have never holds (`notIn` included).
//! A rollout that needs a `targetingKey` the context lacks is an evaluation error
//! (`TARGETING_KEY_MISSING`), unless one variant has the whole rollout.
//!
//! Prerequisites name other flags of the config, so they are checked against the whole set
//! ([`check_prerequisites`]): known flags and variants (a boolean flag's are `on` and `off`),
//! no cycle, chains at most [`MAX_PREREQUISITE_DEPTH`] deep, and at most
//! [`MAX_EVALUATED`] flags evaluated for one.

use crate::domain::bucket::{self, Share};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::FlagName;
use crate::domain::json::{self, deny_unknown};
use crate::domain::named::Named;
use crate::domain::time::Millis;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// At most this many variants per flag.
pub const MAX_VARIANTS: usize = 16;
/// At most this many rules per flag.
pub const MAX_RULES: usize = 32;
/// At most this many conditions per rule.
pub const MAX_CONDITIONS: usize = 8;
/// At most this many values in an `in` or `notIn` list.
pub const MAX_LIST_VALUES: usize = 100;
/// A variant's value, as JSON, is at most this many bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// At most this many entries in a flag's schedule.
pub const MAX_SCHEDULE: usize = 16;
/// At most this many prerequisites per flag.
pub const MAX_PREREQUISITES: usize = 8;
/// A chain of prerequisites (a flag's prerequisite's prerequisite, …) has at most this many
/// links.
pub const MAX_PREREQUISITE_DEPTH: usize = 8;
/// One flag's evaluation evaluates at most this many flags, itself and its prerequisites at
/// every depth (a flag reached twice counted twice).
pub const MAX_EVALUATED: u32 = 100;

/// Why a flag answered what it did (OpenFeature's resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A boolean flag, or an object flag without rules or rollout.
    Static,
    /// A rule matched the context.
    TargetingMatch,
    /// The rollout chose by bucketing the `targetingKey`.
    Split,
    /// A prerequisite was not met, or no rule matched and there is no rollout:
    /// `defaultVariant`.
    Default,
    /// The flag is disabled: `defaultVariant`.
    Disabled,
    /// The evaluation failed: `defaultVariant`, and an error code says why.
    Error,
}

/// Why an evaluation failed (OpenFeature's error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    /// The rollout needs a `targetingKey` and the context has none.
    TargetingKeyMissing,
}

impl EvalError {
    /// The OpenFeature error code.
    pub fn code(self) -> &'static str {
        match self {
            EvalError::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }

    /// A description for the caller.
    pub fn details(self) -> &'static str {
        match self {
            EvalError::TargetingKeyMissing => {
                "the flag's rollout needs a targetingKey in the context"
            }
        }
    }
}

/// The answer of one flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// The variant's value.
    pub value: &'a Value,
    /// The variant's name (`on`/`off` for a boolean flag).
    pub variant: &'a str,
    /// Why.
    pub reason: Reason,
    /// The index of the rule that matched, for `TARGETING_MATCH`.
    pub rule: Option<usize>,
    /// The prerequisite flag that was not met, for `DEFAULT`.
    pub unmet: Option<&'a str>,
}

/// What a flag is evaluated against: an optional `targetingKey` and attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalContext {
    /// The key sticky bucketing hashes.
    pub targeting_key: Option<String>,
    /// Every other attribute.
    pub attributes: Map<String, Value>,
    /// When it is evaluated, for schedules (the request's time; 0 until set).
    pub now: Millis,
}

impl EvalContext {
    /// The OpenFeature context object: `targetingKey`, if present, must be a string.
    pub fn from_json(context: &Value) -> DomainResult<Self> {
        let obj = context
            .as_object()
            .ok_or_else(|| DomainError::invalid("context", "must be an object"))?;
        // Copied entry by entry rather than cloned and then removed from: a `Map::remove`
        // links the B-tree's rebalancing code (about 4 KB of Wasm) for this one call.
        let (mut attributes, mut targeting_key) = (Map::new(), None);
        for (name, value) in obj {
            if name != "targetingKey" {
                attributes.insert(name.clone(), value.clone());
                continue;
            }
            let key = value
                .as_str()
                .ok_or_else(|| DomainError::invalid("context.targetingKey", "must be a string"))?;
            targeting_key = Some(key.to_owned());
        }
        Ok(EvalContext {
            targeting_key,
            attributes,
            now: Millis(0),
        })
    }
    fn attribute(&self, name: &str) -> Option<Value> {
        match name {
            "targetingKey" => self.targeting_key.clone().map(Value::String),
            _ => self.attributes.get(name).cloned(),
        }
    }
}

/// One flag of the config.
#[derive(Debug, Clone, PartialEq)]
pub enum Flag {
    /// On or off for everyone.
    Bool(bool),
    /// Variants, rules, rollout.
    Variants(Box<FlagDef>),
}

/// A flag with variants.
#[derive(Debug, Clone)]
pub struct FlagDef {
    /// Variant name → value (ordered by name).
    pub variants: Map<String, Value>,
    /// The variant answered when nothing else decides, and when disabled.
    pub default_variant: String,
    /// Targeting rules, in order.
    pub rules: Vec<Rule>,
    /// The percentage rollout, if any.
    pub rollout: Option<Vec<Share>>,
    /// Prerequisites: flag name → the variants (strings: `on`, `off` for a boolean flag) one
    /// of which it must answer, for the same context, before this flag is evaluated; checked
    /// in name order. Kept as written, once checked.
    pub prerequisites: Map<String, Value>,
    /// Whether the flag is evaluated at all: `false` is the kill switch, whatever the
    /// schedule says.
    pub enabled: bool,
    /// Switches by the clock, in increasing `at`.
    pub schedule: Vec<Switch>,
}

/// A schedule entry: from `at` (milliseconds since the epoch) on, the flag is `enabled` as
/// it says, and answers from the definition `set` (at least one of the two).
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// When it takes effect.
    pub at: u64,
    /// Whether the flag is on from then.
    pub enabled: Option<bool>,
    /// The definition it answers from then: variants, `defaultVariant`, rules and rollout
    /// (prerequisites, `enabled` and the schedule stay the flag's), parsed, and as written
    /// (what is stored again).
    pub set: Option<Box<(FlagDef, Value)>>,
}

impl Switch {
    /// Whether it has taken effect at `now`.
    fn passed(&self, now: Millis) -> bool {
        i64::try_from(self.at).is_ok_and(|at| at <= now.0)
    }
}

impl PartialEq for FlagDef {
    fn eq(&self, other: &Self) -> bool {
        let shares = |d: &FlagDef| -> Option<Vec<(String, u32)>> {
            d.rollout
                .as_ref()
                .map(|r| r.iter().map(|s| (s.variant.clone(), s.weight)).collect())
        };
        self.variants == other.variants
            && self.default_variant == other.default_variant
            && self.rules == other.rules
            && shares(self) == shares(other)
            && self.prerequisites == other.prerequisites
            && self.enabled == other.enabled
            && self.schedule == other.schedule
    }
}

/// A targeting rule: every condition must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Attribute → condition, ordered by attribute.
    pub when: Vec<(String, Condition)>,
    /// The variant answered when the rule matches.
    pub variant: String,
}

/// A condition on one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The attribute equals one of these.
    In(Vec<Value>),
    /// The attribute is present and equals none of these.
    NotIn(Vec<Value>),
    /// The attribute equals this.
    Equals(Value),
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Condition {
    fn holds(&self, attribute: Option<&Value>) -> bool {
        let Some(v) = attribute else {
            return false;
        };
        match self {
            Condition::In(list) => list.iter().any(|x| same(x, v)),
            Condition::NotIn(list) => !list.iter().any(|x| same(x, v)),
            Condition::Equals(x) => same(x, v),
        }
    }
}

static BOOL_VALUES: [Value; 2] = [Value::Bool(false), Value::Bool(true)];

impl Flag {
    /// Parses one entry of `featureFlags`; `field` is `featureFlags.<name>`, `name` the flag.
    pub fn parse(field: &str, name: &str, v: &Value) -> DomainResult<Flag> {
        match v {
            Value::Bool(b) => Ok(Flag::Bool(*b)),
            Value::Object(obj) => Ok(Flag::Variants(Box::new(FlagDef::parse(field, name, obj)?))),
            _ => Err(DomainError::invalid(
                field,
                "must be a boolean or a flag object",
            )),
        }
    }

    /// Evaluates the flag against `context`; `flags` is the config's set, for prerequisites.
    pub fn evaluate(
        &self,
        flags: &Named<Flag>,
        context: &EvalContext,
    ) -> Result<Evaluation<'_>, EvalError> {
        self.evaluate_at(flags, context, 0)
    }

    /// [`Flag::evaluate`] as the prerequisite `depth` links down.
    fn evaluate_at(
        &self,
        flags: &Named<Flag>,
        context: &EvalContext,
        depth: usize,
    ) -> Result<Evaluation<'_>, EvalError> {
        match self {
            Flag::Bool(b) => Ok(Evaluation {
                value: &BOOL_VALUES[usize::from(*b)],
                variant: if *b { "on" } else { "off" },
                reason: Reason::Static,
                rule: None,
                unmet: None,
            }),
            Flag::Variants(def) => def.evaluate(flags, context, depth),
        }
    }

    /// The answer when evaluation at `now` fails: the default variant of the definition in
    /// effect (`false` for a boolean flag).
    pub fn fallback(&self, now: Millis) -> Evaluation<'_> {
        match self {
            Flag::Bool(_) => Evaluation {
                value: &BOOL_VALUES[0],
                variant: "off",
                reason: Reason::Error,
                rule: None,
                unmet: None,
            },
            Flag::Variants(def) => {
                let def = def.effective(now);
                def.answer(&def.default_variant, Reason::Error)
            }
        }
    }

    /// The flag as one boolean for `context`: the answer's value when it is a boolean (the
    /// default variant's when evaluation fails), else whether the flag is enabled.
    pub fn is_on(&self, flags: &Named<Flag>, context: &EvalContext) -> bool {
        let e = self
            .evaluate(flags, context)
            .unwrap_or_else(|_| self.fallback(context.now));
        e.value
            .as_bool()
            .unwrap_or_else(|| self.is_enabled(context.now))
    }

    /// Whether the flag is switched on at `now`: a boolean flag's value, an object flag's
    /// `enabled` and its schedule.
    pub fn is_enabled(&self, now: Millis) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Variants(def) => def.enabled_at(now),
        }
    }
}

impl FlagDef {
    fn answer<'a>(&'a self, variant: &'a str, reason: Reason) -> Evaluation<'a> {
        Evaluation {
            value: self.variants.get(variant).unwrap_or(&Value::Null),
            variant,
            reason,
            rule: None,
            unmet: None,
        }
    }

    /// The first prerequisite `context` does not meet. One `depth` links down has none to
    /// evaluate past [`MAX_PREREQUISITE_DEPTH`] (the config's check refuses such chains).
    fn unmet(&self, flags: &Named<Flag>, context: &EvalContext, depth: usize) -> Option<&str> {
        for (name, variants) in &self.prerequisites {
            let answer = match flags.get(name) {
                Some(f) if depth < MAX_PREREQUISITE_DEPTH => {
                    f.evaluate_at(flags, context, depth + 1)
                }
                _ => return Some(name),
            };
            let listed = |e: Evaluation| {
                variants
                    .as_array()
                    .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(e.variant)))
            };
            if !answer.is_ok_and(listed) {
                return Some(name);
            }
        }
        None
    }

    /// `enabled`, and the schedule's state at `now`.
    fn enabled_at(&self, now: Millis) -> bool {
        self.enabled && self.scheduled_on(now)
    }

    /// The schedule's state at `now`: the last entry with `enabled` that passed, or before
    /// the first such entry the opposite of it (on without one).
    fn scheduled_on(&self, now: Millis) -> bool {
        let mut switches = self.schedule.iter().filter(|s| s.enabled.is_some());
        let mut on = switches.next().is_none_or(|s| s.enabled == Some(false));
        for s in self.schedule.iter().filter(|s| s.passed(now)) {
            on = s.enabled.unwrap_or(on);
        }
        on
    }

    /// The definition the flag answers from at `now`: the last `set` that passed, else its own.
    fn effective(&self, now: Millis) -> &FlagDef {
        let staged = self.schedule.iter().rev().filter(|s| s.passed(now));
        let mut defs = staged.filter_map(|s| s.set.as_deref().map(|(def, _)| def));
        defs.next().unwrap_or(self)
    }

    /// When the schedule's first entry takes effect (entries that took effect are removed
    /// when first served: [`FlagDef::settled`]).
    pub fn next_switch(&self) -> Option<u64> {
        self.schedule.first().map(|s| s.at)
    }

    /// The flag as it should be stored once the entries up to `drop_until` are behind it:
    /// the entries up to `apply_until` applied (the definition of the last `set`, the state
    /// of the last `enabled`), the ones after it up to `drop_until` dropped unapplied (a
    /// rollback wins over them), the later ones kept. `None` when no entry is that old.
    /// The state is kept by what stays: a leading later entry that would not change it is
    /// dropped, so the one before the rest is its opposite as the schedule reads; with no
    /// `enabled` entry left, a state of off is `enabled: false`.
    pub fn settled(&self, apply_until: Millis, drop_until: Millis) -> Option<FlagDef> {
        if !self.schedule.iter().any(|s| s.passed(drop_until)) {
            return None;
        }
        let on = self.scheduled_on(apply_until);
        let mut rest: Vec<Switch> = Vec::new();
        let mut settled = true;
        for s in self.schedule.iter().filter(|s| !s.passed(drop_until)) {
            let mut s = s.clone();
            if settled && s.enabled == Some(on) {
                s.enabled = None;
            }
            settled &= s.enabled.is_none();
            if s.enabled.is_some() || s.set.is_some() {
                rest.push(s);
            }
        }
        let def = self.effective(apply_until);
        Some(FlagDef {
            variants: def.variants.clone(),
            default_variant: def.default_variant.clone(),
            rules: def.rules.clone(),
            rollout: def.rollout.clone(),
            prerequisites: self.prerequisites.clone(),
            enabled: self.enabled && (on || !settled),
            schedule: rest,
        })
    }

    fn evaluate(
        &self,
        flags: &Named<Flag>,
        context: &EvalContext,
        depth: usize,
    ) -> Result<Evaluation<'_>, EvalError> {
        // The definition a scheduled `set` made current; prerequisites stay the flag's own.
        let def = self.effective(context.now);
        if !self.enabled_at(context.now) {
            return Ok(def.answer(&def.default_variant, Reason::Disabled));
        }
        if let Some(flag) = self.unmet(flags, context, depth) {
            let answer = def.answer(&def.default_variant, Reason::Default);
            return Ok(Evaluation {
                unmet: Some(flag),
                ..answer
            });
        }
        for (i, rule) in def.rules.iter().enumerate() {
            let hit = rule
                .when
                .iter()
                .all(|(attr, cond)| cond.holds(context.attribute(attr).as_ref()));
            if hit {
                let answer = def.answer(&rule.variant, Reason::TargetingMatch);
                return Ok(Evaluation {
                    rule: Some(i),
                    ..answer
                });
            }
        }
        let Some(shares) = &def.rollout else {
            let reason = match def.rules.is_empty() && self.prerequisites.is_empty() {
                true => Reason::Static,
                false => Reason::Default,
            };
            return Ok(def.answer(&def.default_variant, reason));
        };
        let mut weighted = shares.iter().filter(|s| s.weight > 0);
        let key = match (&context.targeting_key, weighted.next(), weighted.next()) {
            (Some(key), _, _) => key.as_str(),
            (None, Some(only), None) => return Ok(def.answer(&only.variant, Reason::Split)),
            (None, _, _) => return Err(EvalError::TargetingKeyMissing),
        };
        let variant = bucket::choose(shares, key).unwrap_or(&def.default_variant);
        Ok(def.answer(variant, Reason::Split))
    }

    fn parse(field: &str, name: &str, obj: &Map<String, Value>) -> DomainResult<FlagDef> {
        const FIELDS: [&str; 7] = [
            "variants",
            "defaultVariant",
            "prerequisites",
            "rules",
            "rollout",
            "enabled",
            "schedule",
        ];
        deny_unknown(obj, &FIELDS, &json::member(field, ""))?;
        let variants = parse_variants(&json::member(field, "variants"), obj.get("variants"))?;
        let known = |f: &str, v: &Value| -> DomainResult<String> {
            let s = v
                .as_str()
                .ok_or_else(|| DomainError::invalid(f, "must be a string"))?;
            match variants.contains_key(s) {
                true => Ok(s.to_string()),
                false => Err(unknown(f, "variant", s)),
            }
        };
        let default_field = json::member(field, "defaultVariant");
        let default_variant = match obj.get("defaultVariant") {
            Some(v) => known(&default_field, v)?,
            None => return Err(DomainError::invalid(&default_field, "is required")),
        };
        let prerequisites = match obj.get("prerequisites") {
            Some(v) => parse_prerequisites(&json::member(field, "prerequisites"), v)?,
            None => Map::new(),
        };
        let rules = match obj.get("rules") {
            Some(v) => parse_rules(&json::member(field, "rules"), v, &known)?,
            None => Vec::new(),
        };
        let rollout = match obj.get("rollout") {
            Some(v) => Some(parse_rollout(field, name, v, &variants)?),
            None => None,
        };
        let enabled = match obj.get("enabled") {
            Some(v) => v.as_bool().ok_or_else(|| {
                DomainError::invalid(&json::member(field, "enabled"), "must be a boolean")
            })?,
            None => true,
        };
        let schedule = match obj.get("schedule") {
            Some(v) => parse_schedule(&json::member(field, "schedule"), name, v)?,
            None => Vec::new(),
        };
        Ok(FlagDef {
            variants,
            default_variant,
            rules,
            rollout,
            prerequisites,
            enabled,
            schedule,
        })
    }
}

/// The JSON type of a variant value, for the rule that all variants share one.
fn kind(v: &Value) -> Option<&'static str> {
    match v {
        Value::Bool(_) => Some("boolean"),
        Value::String(_) => Some("string"),
        Value::Number(_) => Some("number"),
        Value::Object(_) => Some("object"),
        Value::Null | Value::Array(_) => None,
    }
}

fn parse_variants(field: &str, v: Option<&Value>) -> DomainResult<Map<String, Value>> {
    let obj = v
        .ok_or_else(|| DomainError::invalid(field, "is required"))?
        .as_object()
        .ok_or_else(|| DomainError::invalid(field, "must be an object of variant name to value"))?;
    if obj.is_empty() || obj.len() > MAX_VARIANTS {
        let problem = format!("must have 1 to {MAX_VARIANTS} variants");
        return Err(DomainError::invalid(field, &problem));
    }
    let mut first_kind = None;
    for (name, value) in obj {
        let f = json::member(field, name);
        FlagName::parse(&f, name)?;
        let k = kind(value).ok_or_else(|| {
            DomainError::invalid(&f, "must be a boolean, string, number or object")
        })?;
        if *first_kind.get_or_insert(k) != k {
            let problem = format!(
                "must be a {} like the other variants",
                first_kind.unwrap_or(k)
            );
            return Err(DomainError::invalid(&f, &problem));
        }
        if json::text(value).len() > MAX_VALUE_BYTES {
            let problem = format!("must be at most {MAX_VALUE_BYTES} bytes of JSON");
            return Err(DomainError::invalid(&f, &problem));
        }
    }
    Ok(obj.clone())
}

/// `{flag: [variant, …]}`: at most [`MAX_PREREQUISITES`] flags, each with 1 to
/// [`MAX_VARIANTS`] variant names (whether they exist is [`check_prerequisites`]'s to say).
fn parse_prerequisites(field: &str, v: &Value) -> DomainResult<Map<String, Value>> {
    let obj = v
        .as_object()
        .filter(|o| o.len() <= MAX_PREREQUISITES)
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                "must be an object of at most 8 flags to variant names",
            )
        })?;
    for (flag, list) in obj {
        let items = list
            .as_array()
            .filter(|a| (1..=MAX_VARIANTS).contains(&a.len()));
        let names = items.is_some_and(|a| a.iter().all(Value::is_string));
        if !names {
            let f = json::member(field, flag);
            return Err(DomainError::invalid(&f, "must be 1 to 16 variant names"));
        }
    }
    Ok(obj.clone())
}

/// At most [`MAX_SCHEDULE`] entries in increasing `at` (milliseconds since the epoch), each
/// with `enabled` (a boolean), `set` (a definition: [`parse_staged`]) or both.
fn parse_schedule(field: &str, name: &str, v: &Value) -> DomainResult<Vec<Switch>> {
    let list = v.as_array().filter(|l| l.len() <= MAX_SCHEDULE);
    let list =
        list.ok_or_else(|| DomainError::invalid(field, "must be an array of at most 16 entries"))?;
    let mut out: Vec<Switch> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let at_field = format!("{field}[{i}]");
        let obj = entry.as_object();
        let at = obj.and_then(|o| o.get("at")).and_then(json::whole_number);
        let enabled = match obj.and_then(|o| o.get("enabled")) {
            Some(v) => v.as_bool().map(Some).ok_or(()),
            None => Ok(None),
        };
        let set = obj.and_then(|o| o.get("set"));
        let later = at.is_some_and(|at| out.last().is_none_or(|s| s.at < at));
        let known = |o: &Map<String, Value>| {
            o.keys()
                .all(|k| ["at", "enabled", "set"].contains(&k.as_str()))
        };
        let (Some(at), Ok(enabled), true) = (at, enabled, later && obj.is_some_and(known)) else {
            return Err(DomainError::invalid(&at_field, SWITCH_PROBLEM));
        };
        let set = match set {
            Some(v) => {
                let def = parse_staged(&json::member(&at_field, "set"), name, v)?;
                Some(Box::new((def, v.clone())))
            }
            None => None,
        };
        if enabled.is_none() && set.is_none() {
            return Err(DomainError::invalid(&at_field, SWITCH_PROBLEM));
        }
        out.push(Switch { at, enabled, set });
    }
    Ok(out)
}

/// What a schedule entry must be.
const SWITCH_PROBLEM: &str = "must be {\"at\": milliseconds since the epoch, later than the entry before, \"enabled\": boolean, \"set\": a flag definition} with `enabled`, `set` or both";

/// A scheduled definition: `variants`, `defaultVariant`, `rules` and `rollout`, checked as a
/// flag's are.
fn parse_staged(field: &str, name: &str, v: &Value) -> DomainResult<FlagDef> {
    let obj = v
        .as_object()
        .ok_or_else(|| DomainError::invalid(field, "must be a flag definition object"))?;
    deny_unknown(
        obj,
        &["variants", "defaultVariant", "rules", "rollout"],
        &json::member(field, ""),
    )?;
    FlagDef::parse(field, name, obj)
}

/// `field: unknown <what> "<name>"`.
fn unknown(field: &str, what: &str, name: &str) -> DomainError {
    let mut problem = String::from("unknown ");
    problem.push_str(what);
    problem.push(' ');
    problem.push_str(&json::quoted(name));
    DomainError::invalid(field, &problem)
}

/// Checks every flag's prerequisites against the whole set: each names a flag of the set and
/// variants of it; no flag is its own prerequisite through any chain
/// (`featureFlags.a.prerequisites: cycle a → b → a`; a cycle longer than a chain may be is
/// refused as too deep); no chain is longer than [`MAX_PREREQUISITE_DEPTH`] links; and no
/// evaluation evaluates more than [`MAX_EVALUATED`] flags. Each flag's prerequisites are
/// walked as its evaluation would walk them, so the check costs at most that many steps per
/// flag.
pub fn check_prerequisites(flags: &Named<Flag>) -> DomainResult<()> {
    let mut path = Vec::with_capacity(MAX_PREREQUISITE_DEPTH);
    for i in 0..flags.len() {
        let mut evaluated = 0;
        walk(flags, i, &mut path, &mut evaluated)?;
        if evaluated > MAX_EVALUATED {
            let problem = "evaluating it would evaluate over 100 flags";
            return Err(DomainError::invalid(
                &prerequisites_field(flags, i),
                problem,
            ));
        }
    }
    Ok(())
}

/// `featureFlags.<flag i>.prerequisites`.
fn prerequisites_field(flags: &Named<Flag>, i: usize) -> String {
    let name = flags.at(i).map_or("", |(name, _)| name);
    json::member(&json::member("featureFlags", name), "prerequisites")
}

/// Walks flag `i` and its prerequisites, counting each flag an evaluation of the first one
/// (`path[0]`, or `i`) evaluates; `path` holds the flags that led to `i`.
fn walk(
    flags: &Named<Flag>,
    i: usize,
    path: &mut Vec<usize>,
    evaluated: &mut u32,
) -> DomainResult<()> {
    *evaluated += 1;
    let def = match flags.at(i) {
        Some((_, Flag::Variants(def))) if *evaluated <= MAX_EVALUATED => def,
        _ => return Ok(()),
    };
    if let Some(at) = path.iter().position(|p| *p == i) {
        let mut cycle = String::from("cycle ");
        for p in path.get(at..).unwrap_or_default() {
            cycle.push_str(flags.at(*p).map_or("", |(name, _)| name));
            cycle.push_str(" → ");
        }
        cycle.push_str(flags.at(i).map_or("", |(name, _)| name));
        return Err(DomainError::invalid(&prerequisites_field(flags, i), &cycle));
    }
    if path.len() >= MAX_PREREQUISITE_DEPTH && !def.prerequisites.is_empty() {
        let root = path.first().copied().unwrap_or(i);
        let problem = "prerequisites nest over 8 links deep";
        return Err(DomainError::invalid(
            &prerequisites_field(flags, root),
            problem,
        ));
    }
    path.push(i);
    for (name, variants) in &def.prerequisites {
        let f = json::member(&prerequisites_field(flags, i), name);
        let j = flags.index(name).ok_or_else(|| unknown(&f, "flag", name))?;
        check_variants(&f, variants, flags.at(j))?;
        walk(flags, j, path, evaluated)?;
    }
    path.pop();
    Ok(())
}

/// Each of `variants` (a prerequisite's, at `field`) is one of `flag`'s (`on`, `off` for a
/// boolean flag).
fn check_variants(field: &str, variants: &Value, flag: Option<(&str, &Flag)>) -> DomainResult<()> {
    let list = variants.as_array().map_or(&[][..], Vec::as_slice);
    for (i, v) in list.iter().enumerate() {
        let v = v.as_str().unwrap_or_default();
        let known = match flag {
            Some((_, Flag::Variants(def))) => def.variants.contains_key(v),
            _ => v == "on" || v == "off",
        };
        if !known {
            return Err(unknown(&format!("{field}[{i}]"), "variant", v));
        }
    }
    Ok(())
}

fn parse_rules(
    field: &str,
    v: &Value,
    known: &dyn Fn(&str, &Value) -> DomainResult<String>,
) -> DomainResult<Vec<Rule>> {
    let list = v
        .as_array()
        .ok_or_else(|| DomainError::invalid(field, "must be an array"))?;
    if list.len() > MAX_RULES {
        return Err(DomainError::invalid(
            field,
            &format!("must have at most {MAX_RULES} rules"),
        ));
    }
    let mut rules = Vec::with_capacity(list.len());
    for (i, rule) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let obj = rule
            .as_object()
            .ok_or_else(|| DomainError::invalid(&f, "must be an object"))?;
        deny_unknown(obj, &["when", "variant"], &json::member(&f, ""))?;
        let variant_field = json::member(&f, "variant");
        let variant = obj
            .get("variant")
            .ok_or_else(|| DomainError::invalid(&variant_field, "is required"))?;
        rules.push(Rule {
            when: parse_when(&json::member(&f, "when"), obj.get("when"))?,
            variant: known(&variant_field, variant)?,
        });
    }
    Ok(rules)
}

fn parse_when(field: &str, v: Option<&Value>) -> DomainResult<Vec<(String, Condition)>> {
    let obj = v
        .ok_or_else(|| DomainError::invalid(field, "is required"))?
        .as_object()
        .ok_or_else(|| {
            DomainError::invalid(field, "must be an object of attribute to condition")
        })?;
    if obj.is_empty() || obj.len() > MAX_CONDITIONS {
        let problem = format!("must have 1 to {MAX_CONDITIONS} conditions");
        return Err(DomainError::invalid(field, &problem));
    }
    let mut when = Vec::with_capacity(obj.len());
    for (attr, cond) in obj {
        let f = json::member(field, attr);
        FlagName::parse(&f, attr)?;
        when.push((attr.clone(), parse_condition(&f, cond)?));
    }
    Ok(when)
}

fn scalar(field: &str, v: &Value) -> DomainResult<Value> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        _ => Err(DomainError::invalid(
            field,
            "must be a string, number or boolean",
        )),
    }
}

fn parse_condition(field: &str, v: &Value) -> DomainResult<Condition> {
    let obj = v.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        DomainError::invalid(
            field,
            "must be one of {\"in\": [...]}, {\"notIn\": [...]}, {\"equals\": value}",
        )
    })?;
    let (op, arg) = obj
        .iter()
        .next()
        .ok_or_else(|| DomainError::invalid(field, "is empty"))?;
    let f = json::member(field, op);
    let list = || -> DomainResult<Vec<Value>> {
        let items = arg
            .as_array()
            .filter(|a| !a.is_empty() && a.len() <= MAX_LIST_VALUES)
            .ok_or_else(|| {
                DomainError::invalid(
                    &f,
                    &format!("must be an array of 1 to {MAX_LIST_VALUES} values"),
                )
            })?;
        let mut values = Vec::with_capacity(items.len());
        for (i, x) in items.iter().enumerate() {
            values.push(scalar(&format!("{f}[{i}]"), x)?);
        }
        Ok(values)
    };
    match op.as_str() {
        "in" => Ok(Condition::In(list()?)),
        "notIn" => Ok(Condition::NotIn(list()?)),
        "equals" => Ok(Condition::Equals(scalar(&f, arg)?)),
        _ => Err(DomainError::invalid(
            &f,
            "unknown condition (in, notIn, equals)",
        )),
    }
}

fn parse_rollout(
    field: &str,
    name: &str,
    v: &Value,
    variants: &Map<String, Value>,
) -> DomainResult<Vec<Share>> {
    let field = json::member(field, "rollout");
    let obj = v.as_object().ok_or_else(|| {
        DomainError::invalid(&field, "must be an object of variant to percentage")
    })?;
    let mut shares = Vec::with_capacity(obj.len());
    let mut total = 0u64;
    for (variant, pct) in obj {
        let f = json::member(&field, variant);
        if !variants.contains_key(variant) {
            return Err(unknown(&f, "variant", variant));
        }
        let p = json::whole_number(pct)
            .filter(|p| *p <= 100)
            .ok_or_else(|| {
                DomainError::invalid(&f, "must be an integer percentage from 0 to 100")
            })?;
        total += p;
        shares.push(Share::new(name, variant, p as u32));
    }
    if total != 100 {
        let problem = format!("percentages must sum to 100 (they sum to {total})");
        return Err(DomainError::invalid(&field, &problem));
    }
    Ok(shares)
}

// ---------------------------------------------------------------------------------------
// Back to JSON, exactly as written (defaults filled in).

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Flag::Bool(b) => s.serialize_bool(*b),
            Flag::Variants(def) => def.serialize(s),
        }
    }
}

impl Serialize for FlagDef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("variants", &self.variants)?;
        m.serialize_entry("defaultVariant", &self.default_variant)?;
        if !self.prerequisites.is_empty() {
            m.serialize_entry("prerequisites", &self.prerequisites)?;
        }
        m.serialize_entry("rules", &self.rules)?;
        if let Some(shares) = &self.rollout {
            m.serialize_entry(
                "rollout",
                &Pairs(shares.iter().map(|s| (&s.variant, s.weight))),
            )?;
        }
        m.serialize_entry("enabled", &self.enabled)?;
        if !self.schedule.is_empty() {
            m.serialize_entry("schedule", &self.schedule)?;
        }
        m.end()
    }
}

impl Serialize for Switch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("at", &self.at)?;
        if let Some(enabled) = self.enabled {
            m.serialize_entry("enabled", &enabled)?;
        }
        if let Some(set) = &self.set {
            m.serialize_entry("set", &set.1)?;
        }
        m.end()
    }
}

/// Key-value pairs serialised as a JSON object.
struct Pairs<I>(I);

impl<K: Serialize, V: Serialize, I: Iterator<Item = (K, V)> + Clone> Serialize for Pairs<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.clone())
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        let when = self.when.iter().map(|(a, c)| (a, c));
        m.serialize_entry("when", &Pairs(when))?;
        m.serialize_entry("variant", &self.variant)?;
        m.end()
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Condition::In(list) => m.serialize_entry("in", list)?,
            Condition::NotIn(list) => m.serialize_entry("notIn", list)?,
            Condition::Equals(v) => m.serialize_entry("equals", v)?,
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(v: Value) -> Flag {
        Flag::parse("featureFlags.f", "f", &v).unwrap()
    }

    fn context(v: Value) -> EvalContext {
        EvalContext::from_json(&v).unwrap()
    }

    fn checkout() -> Flag {
        flag(json!({
            "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "rules": [
                {"when": {"country": {"in": ["NL", "BE"]}}, "variant": "on"},
                {"when": {"plan": {"equals": "free"}, "beta": {"equals": true}}, "variant": "off"},
                {"when": {"tier": {"notIn": [1, 2]}}, "variant": "on"},
            ],
            "rollout": {"on": 30, "off": 70},
        }))
    }

    #[test]
    fn booleans_stay_static() {
        let (on, off) = (flag(json!(true)), flag(json!(false)));
        let e = on
            .evaluate(&Named::default(), &EvalContext::default())
            .unwrap();
        assert_eq!(
            (e.value, e.variant, e.reason),
            (&json!(true), "on", Reason::Static)
        );
        let e = off
            .evaluate(&Named::default(), &EvalContext::default())
            .unwrap();
        assert_eq!((e.value, e.variant), (&json!(false), "off"));
    }

    #[test]
    fn rules_in_order_first_match_wins() {
        let f = checkout();
        let e = f
            .evaluate(
                &Named::default(),
                &context(
                    json!({"targetingKey": "u", "country": "NL", "plan": "free", "beta": true}),
                ),
            )
            .unwrap();
        assert_eq!(
            (e.variant, e.reason, e.rule),
            ("on", Reason::TargetingMatch, Some(0))
        );
        let e = f
            .evaluate(
                &Named::default(),
                &context(json!({"targetingKey": "u", "plan": "free", "beta": true})),
            )
            .unwrap();
        assert_eq!((e.variant, e.rule), ("off", Some(1)));
        let e = f
            .evaluate(
                &Named::default(),
                &context(json!({"targetingKey": "u", "tier": 3.0})),
            )
            .unwrap();
        assert_eq!((e.variant, e.rule), ("on", Some(2)));
        // 2.0 equals 2: numbers compare by value; a missing attribute holds no condition.
        let e = f
            .evaluate(
                &Named::default(),
                &context(json!({"targetingKey": "u", "tier": 2.0, "plan": "free"})),
            )
            .unwrap();
        assert_eq!(e.reason, Reason::Split);
    }

    #[test]
    fn rollout_needs_a_targeting_key_unless_one_variant_has_it_all() {
        let f = checkout();
        assert_eq!(
            f.evaluate(&Named::default(), &EvalContext::default()),
            Err(EvalError::TargetingKeyMissing)
        );
        let e = f
            .evaluate(&Named::default(), &context(json!({"country": "BE"})))
            .unwrap();
        assert_eq!(e.reason, Reason::TargetingMatch, "a rule needs no key");
        let all = flag(
            json!({"variants": {"a": "x", "b": "y"}, "defaultVariant": "a", "rollout": {"a": 0, "b": 100}}),
        );
        let e = all
            .evaluate(&Named::default(), &EvalContext::default())
            .unwrap();
        assert_eq!(
            (e.variant, e.value, e.reason),
            ("b", &json!("y"), Reason::Split)
        );
        let fb = f.fallback(Millis(0));
        assert_eq!((fb.variant, fb.reason), ("off", Reason::Error));
    }

    #[test]
    fn rollout_percentages_may_be_written_with_a_zero_fraction() {
        let split = |a: serde_json::Value, b: serde_json::Value| {
            Flag::parse(
                "featureFlags.f",
                "f",
                &json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "a", "rollout": {"a": a, "b": b}}),
            )
        };
        assert!(split(json!(30.0), json!(70)).is_ok());
        assert!(
            split(json!(30.5), json!(69.5)).is_err(),
            "any other fraction is refused"
        );
    }

    #[test]
    fn the_key_itself_can_be_targeted() {
        let f = flag(json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "a",
            "rules": [{"when": {"targetingKey": {"in": ["vip"]}}, "variant": "b"}]}));
        assert_eq!(
            f.evaluate(&Named::default(), &context(json!({"targetingKey": "vip"})))
                .unwrap()
                .variant,
            "b"
        );
        let e = f
            .evaluate(&Named::default(), &context(json!({"targetingKey": "x"})))
            .unwrap();
        assert_eq!((e.variant, e.reason), ("a", Reason::Default));
    }

    #[test]
    fn disabled_and_static_answer_the_default() {
        let f = flag(
            json!({"variants": {"a": "x", "b": "y"}, "defaultVariant": "b",
            "rollout": {"a": 100}, "enabled": false}),
        );
        let e = f
            .evaluate(&Named::default(), &context(json!({"targetingKey": "k"})))
            .unwrap();
        assert_eq!((e.variant, e.reason), ("b", Reason::Disabled));
        assert!(!f.is_enabled(Millis(0)));
        let f = flag(json!({"variants": {"a": {"color": "red"}}, "defaultVariant": "a"}));
        let e = f
            .evaluate(&Named::default(), &EvalContext::default())
            .unwrap();
        assert_eq!(
            (e.value, e.reason),
            (&json!({"color": "red"}), Reason::Static)
        );
    }

    #[test]
    fn definitions_round_trip_with_defaults_filled_in() {
        let v = json!({"variants": {"off": false, "on": true}, "defaultVariant": "off",
            "rules": [{"when": {"country": {"notIn": ["US"]}}, "variant": "on"}],
            "rollout": {"off": 50, "on": 50}});
        let mut want = v.clone();
        want["enabled"] = json!(true);
        assert_eq!(serde_json::to_value(flag(v)).unwrap(), want);
        let v = json!({"variants": {"a": 1}, "defaultVariant": "a", "rules": [], "enabled": false});
        assert_eq!(serde_json::to_value(flag(v.clone())).unwrap(), v);
    }

    #[test]
    fn validation_names_the_bad_field() {
        let big = "x".repeat(MAX_VALUE_BYTES);
        let many: Map<String, Value> = (0..=MAX_VARIANTS)
            .map(|i| (format!("v{i}"), json!(i)))
            .collect();
        let rules: Vec<Value> = (0..=MAX_RULES)
            .map(|_| json!({"when": {"a": {"equals": 1}}, "variant": "a"}))
            .collect();
        let base = |extra: Value| {
            let mut v = json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "a"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let cases = [
            (json!("yes"), "featureFlags.f"),
            (json!({"defaultVariant": "a"}), "featureFlags.f.variants"),
            (
                json!({"variants": {}, "defaultVariant": "a"}),
                "featureFlags.f.variants",
            ),
            (
                json!({"variants": many, "defaultVariant": "v0"}),
                "featureFlags.f.variants",
            ),
            (
                json!({"variants": {"a b": 1}, "defaultVariant": "a b"}),
                "featureFlags.f.variants.a b",
            ),
            (
                json!({"variants": {"a": [1]}, "defaultVariant": "a"}),
                "featureFlags.f.variants.a",
            ),
            (
                json!({"variants": {"a": null}, "defaultVariant": "a"}),
                "featureFlags.f.variants.a",
            ),
            (
                json!({"variants": {"a": 1, "b": "2"}, "defaultVariant": "a"}),
                "featureFlags.f.variants.b",
            ),
            (
                json!({"variants": {"a": big}, "defaultVariant": "a"}),
                "featureFlags.f.variants.a",
            ),
            (
                json!({"variants": {"a": 1}}),
                "featureFlags.f.defaultVariant",
            ),
            (
                base(json!({"defaultVariant": "z"})),
                "featureFlags.f.defaultVariant",
            ),
            (base(json!({"surprise": 1})), "featureFlags.f.surprise"),
            (base(json!({"enabled": "no"})), "featureFlags.f.enabled"),
            (
                base(json!({"rollout": {"a": 50, "b": 40}})),
                "featureFlags.f.rollout",
            ),
            (
                base(json!({"rollout": {"a": 50, "z": 50}})),
                "featureFlags.f.rollout.z",
            ),
            (
                base(json!({"rollout": {"a": 101}})),
                "featureFlags.f.rollout.a",
            ),
            (
                base(json!({"rollout": {"a": 50.5, "b": 49.5}})),
                "featureFlags.f.rollout.a",
            ),
            (base(json!({"rollout": [50, 50]})), "featureFlags.f.rollout"),
            (base(json!({"rules": {}})), "featureFlags.f.rules"),
            (base(json!({"rules": rules})), "featureFlags.f.rules"),
            (base(json!({"rules": [1]})), "featureFlags.f.rules[0]"),
            (
                base(json!({"rules": [{"when": {"c": {"in": ["x"]}}}]})),
                "featureFlags.f.rules[0].variant",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"in": ["x"]}}, "variant": "z"}]})),
                "featureFlags.f.rules[0].variant",
            ),
            (
                base(json!({"rules": [{"variant": "a"}]})),
                "featureFlags.f.rules[0].when",
            ),
            (
                base(json!({"rules": [{"when": {}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"in": []}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c.in",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"in": [[1]]}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c.in[0]",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"like": "x"}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c.like",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"equals": {}}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c.equals",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"in": [1], "equals": 1}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c",
            ),
            (
                base(json!({"rules": [{"when": {"c d": {"equals": 1}}, "variant": "a"}]})),
                "featureFlags.f.rules[0].when.c d",
            ),
            (
                base(json!({"rules": [{"when": {"c": {"equals": 1}}, "variant": "a", "x": 1}]})),
                "featureFlags.f.rules[0].x",
            ),
        ];
        for (v, field) in cases {
            match Flag::parse("featureFlags.f", "f", &v) {
                Err(DomainError::Invalid(m)) => {
                    assert!(m.starts_with(&format!("{field}:")), "{m} vs {field}")
                }
                other => panic!("{v} gave {other:?}"),
            }
        }
        let exactly = "x".repeat(MAX_VALUE_BYTES - 2);
        assert!(Flag::parse(
            "f",
            "f",
            &json!({"variants": {"a": exactly}, "defaultVariant": "a"})
        )
        .is_ok());
    }

    /// The flags of `v` (name → definition), parsed and checked as a set.
    fn set(v: Value) -> DomainResult<Named<Flag>> {
        let mut out = Named::default();
        for (name, def) in v.as_object().unwrap() {
            let field = format!("featureFlags.{name}");
            out.insert(name.clone(), Flag::parse(&field, name, def)?);
        }
        check_prerequisites(&out)?;
        Ok(out)
    }

    fn refused(v: Value) -> String {
        match set(v) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    /// A flag on for everyone (a 100 % rollout) once its prerequisites are met.
    fn gated(prerequisites: Value) -> Value {
        json!({"variants": {"on": true, "off": false}, "defaultVariant": "off",
            "rollout": {"on": 100}, "prerequisites": prerequisites})
    }

    fn answer(flags: &Named<Flag>, name: &str, c: Value) -> (String, Reason, Option<String>) {
        let e = flags
            .get(name)
            .unwrap()
            .evaluate(flags, &context(c))
            .unwrap();
        (e.variant.to_string(), e.reason, e.unmet.map(str::to_string))
    }

    #[test]
    fn prerequisites_parse_check_and_round_trip() {
        let flags = set(json!({
            "a": gated(json!({"b": ["on"], "c": ["x", "y"]})),
            "b": true,
            "c": {"variants": {"x": 1, "y": 2}, "defaultVariant": "x"},
        }))
        .unwrap();
        let a = serde_json::to_value(flags.get("a").unwrap()).unwrap();
        assert_eq!(a["prerequisites"], json!({"b": ["on"], "c": ["x", "y"]}));
        assert_eq!(flag(a.clone()), *flags.get("a").unwrap(), "it parses back");
        let c = serde_json::to_value(flags.get("c").unwrap()).unwrap();
        assert!(
            c.get("prerequisites").is_none(),
            "left out when there are none"
        );
        let empty = set(json!({"a": gated(json!({}))})).unwrap();
        let e = empty
            .get("a")
            .unwrap()
            .evaluate(&empty, &EvalContext::default());
        assert_eq!(e.unwrap().variant, "on", "no prerequisites: always met");
        let limits = (MAX_PREREQUISITES, MAX_PREREQUISITE_DEPTH, MAX_EVALUATED);
        assert_eq!(
            (limits, MAX_VARIANTS),
            ((8, 8, 100), 16),
            "as the messages say"
        );
    }

    #[test]
    fn prerequisites_must_name_known_flags_and_their_variants() {
        let nine: Map<String, Value> = (0..=MAX_PREREQUISITES)
            .map(|i| (format!("b{i}"), json!(["on"])))
            .collect();
        let sixteen: Vec<String> = (0..=MAX_VARIANTS).map(|i| format!("v{i}")).collect();
        let cases = [
            (
                json!({"a": gated(json!([{"flag": "b", "variants": ["on"]}])), "b": true}),
                "featureFlags.a.prerequisites: must be an object of at most 8 flags to variant names",
            ),
            (
                json!({"a": gated(json!(nine))}),
                "featureFlags.a.prerequisites: must be an object of at most 8 flags to variant names",
            ),
            (
                json!({"a": gated(json!({"b": []})), "b": true}),
                "featureFlags.a.prerequisites.b: must be 1 to 16 variant names",
            ),
            (
                json!({"a": gated(json!({"b": sixteen})), "b": true}),
                "featureFlags.a.prerequisites.b: must be 1 to 16 variant names",
            ),
            (
                json!({"a": gated(json!({"b": ["on", true]})), "b": true}),
                "featureFlags.a.prerequisites.b: must be 1 to 16 variant names",
            ),
            (
                json!({"a": gated(json!({"b": "on"})), "b": true}),
                "featureFlags.a.prerequisites.b: must be 1 to 16 variant names",
            ),
            (
                json!({"a": gated(json!({"b": ["on"], "nope": ["on"]})), "b": true}),
                "featureFlags.a.prerequisites.nope: unknown flag \"nope\"",
            ),
            (
                json!({"a": gated(json!({"b": ["off", "true"]})), "b": true}),
                "featureFlags.a.prerequisites.b[1]: unknown variant \"true\"",
            ),
            (
                json!({"a": gated(json!({"c": ["on"]})),
                       "c": {"variants": {"x": 1}, "defaultVariant": "x"}}),
                "featureFlags.a.prerequisites.c[0]: unknown variant \"on\"",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(refused(v), want);
        }
    }

    #[test]
    fn prerequisite_cycles_are_refused_naming_the_cycle() {
        let on = |name: &str| json!({name: ["on"]});
        assert_eq!(
            refused(json!({"a": gated(on("a"))})),
            "featureFlags.a.prerequisites: cycle a → a"
        );
        assert_eq!(
            refused(json!({"a": gated(on("b")), "b": gated(on("a"))})),
            "featureFlags.a.prerequisites: cycle a → b → a"
        );
        // Reached from outside the cycle: named from where it closes.
        assert_eq!(
            refused(
                json!({"a": gated(on("c")), "c": gated(on("d")), "d": gated(on("e")),
                "e": gated(on("c"))})
            ),
            "featureFlags.c.prerequisites: cycle c → d → e → c"
        );
        // A diamond (two paths to one flag) is no cycle.
        let both = json!({"b": ["on"], "c": ["on"]});
        assert!(set(
            json!({"a": gated(both), "b": gated(on("d")), "c": gated(on("d")), "d": true})
        )
        .is_ok());
    }

    /// Flags `{prefix}0` → `{prefix}1` → … → `{prefix}{links}`, the last a boolean `true`.
    fn chain(prefix: &str, links: usize) -> Map<String, Value> {
        let mut flags = Map::new();
        for i in 0..links {
            let next = format!("{prefix}{}", i + 1);
            flags.insert(format!("{prefix}{i}"), gated(json!({next: ["on"]})));
        }
        flags.insert(format!("{prefix}{links}"), json!(true));
        flags
    }

    #[test]
    fn prerequisite_chains_are_at_most_8_links() {
        let ok = set(Value::Object(chain("f", MAX_PREREQUISITE_DEPTH))).unwrap();
        assert_eq!(answer(&ok, "f0", json!({})).0, "on", "met through 8 links");
        let m = refused(Value::Object(chain("f", MAX_PREREQUISITE_DEPTH + 1)));
        assert_eq!(
            m,
            "featureFlags.f0.prerequisites: prerequisites nest over 8 links deep"
        );
        // The deep part checked first (c0 … c8 is 8 links): `z` adds the ninth.
        let mut flags = chain("c", MAX_PREREQUISITE_DEPTH);
        flags.insert("z".into(), gated(json!({"c0": ["on"]})));
        let m = refused(Value::Object(flags));
        assert_eq!(
            m,
            "featureFlags.z.prerequisites: prerequisites nest over 8 links deep"
        );
    }

    #[test]
    fn one_evaluation_evaluates_at_most_100_flags() {
        // a needs 5 of b, each b the 4 c, each c the 4 d: 1 + 5 × (1 + 4 × (1 + 4)) = 106.
        let needs = |prefix: &str, n: usize| {
            let list: Map<String, Value> = (0..n)
                .map(|i| (format!("{prefix}{i}"), json!(["on"])))
                .collect();
            gated(json!(list))
        };
        let mut flags = Map::new();
        for i in 0..5 {
            flags.insert(format!("b{i}"), needs("c", 4));
        }
        for i in 0..4 {
            flags.insert(format!("c{i}"), needs("d", 4));
            flags.insert(format!("d{i}"), json!(true));
        }
        flags.insert("a".into(), needs("b", 4));
        assert!(set(Value::Object(flags.clone())).is_ok(), "1 + 4 × 21 = 85");
        flags.insert("a".into(), needs("b", 5));
        assert_eq!(
            refused(Value::Object(flags)),
            "featureFlags.a.prerequisites: evaluating it would evaluate over 100 flags"
        );
    }

    #[test]
    fn prerequisites_met_or_not() {
        let flags = set(json!({
            "a": gated(json!({"b": ["on"]})),
            "b": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "rules": [{"when": {"country": {"in": ["NL"]}}, "variant": "on"}]},
            "keyed": gated(json!({"split": ["on", "off"]})),
            "split": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                      "rollout": {"on": 50, "off": 50}},
            "plain": {"variants": {"x": 1, "y": 2}, "defaultVariant": "y",
                      "prerequisites": {"b": ["on"]}},
            "boolOff": gated(json!({"no": ["on"]})),
            "both": gated(json!({"no": ["on"], "b": ["on"]})),
            "boolOn": gated(json!({"no": ["off"]})),
            "no": false,
        }))
        .unwrap();
        let met = answer(&flags, "a", json!({"country": "NL"}));
        assert_eq!(met, ("on".into(), Reason::Split, None));
        let unmet = answer(&flags, "a", json!({"country": "US"}));
        assert_eq!(unmet, ("off".into(), Reason::Default, Some("b".into())));
        // A prerequisite that cannot be evaluated (no targetingKey) is not met.
        let e = answer(&flags, "keyed", json!({}));
        assert_eq!(e, ("off".into(), Reason::Default, Some("split".into())));
        assert_eq!(
            answer(&flags, "keyed", json!({"targetingKey": "k"})).0,
            "on"
        );
        // Met, without rules or rollout: the default, and not STATIC (it depends on context).
        let e = answer(&flags, "plain", json!({"country": "NL"}));
        assert_eq!(e, ("y".into(), Reason::Default, None));
        assert_eq!(
            answer(&flags, "boolOff", json!({})).2.as_deref(),
            Some("no")
        );
        assert_eq!(
            answer(&flags, "boolOn", json!({})).0,
            "on",
            "a false flag is `off`"
        );
    }

    #[test]
    fn prerequisite_chains_and_disabled_prerequisites() {
        let mut v = json!({
            "a": gated(json!({"b": ["on"]})),
            "b": gated(json!({"c": ["go"]})),
            "c": {"variants": {"go": "g", "stop": "s"}, "defaultVariant": "stop",
                  "rollout": {"go": 100}},
        });
        let flags = set(v.clone()).unwrap();
        assert_eq!(
            answer(&flags, "a", json!({})),
            ("on".into(), Reason::Split, None)
        );
        // c disabled answers its default, `stop`: b is not met, so neither is a (naming b).
        v["c"]["enabled"] = json!(false);
        let flags = set(v.clone()).unwrap();
        assert_eq!(answer(&flags, "b", json!({})).2.as_deref(), Some("c"));
        assert_eq!(
            answer(&flags, "a", json!({})),
            ("off".into(), Reason::Default, Some("b".into()))
        );
        // A disabled flag is not evaluated further: DISABLED whatever its prerequisites.
        v["a"]["enabled"] = json!(false);
        let flags = set(v.clone()).unwrap();
        assert_eq!(
            answer(&flags, "a", json!({})),
            ("off".into(), Reason::Disabled, None)
        );
        // A disabled prerequisite whose default is listed is met.
        v["c"]["defaultVariant"] = json!("go");
        let flags = set(v).unwrap();
        assert_eq!(
            answer(&flags, "b", json!({})),
            ("on".into(), Reason::Split, None)
        );
    }

    #[test]
    fn evaluation_stops_past_8_links_even_in_an_unchecked_set() {
        let mut flags = Named::default();
        for (name, def) in chain("f", MAX_PREREQUISITE_DEPTH + 1) {
            flags.insert(name.clone(), Flag::parse("f", &name, &def).unwrap());
        }
        assert_eq!(answer(&flags, "f1", json!({})).0, "on", "8 links");
        assert_eq!(
            answer(&flags, "f0", json!({})),
            ("off".into(), Reason::Default, Some("f1".into())),
            "the ninth link is never evaluated: not met"
        );
    }

    #[test]
    fn schedules_parse_and_round_trip() {
        let v = json!({"variants": {"a": 1}, "defaultVariant": "a", "rules": [], "enabled": true,
            "schedule": [{"at": 1000, "enabled": true}, {"at": 2000.0, "enabled": false}]});
        let f = flag(v.clone());
        let mut want = v;
        want["schedule"][1]["at"] = json!(2000);
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            want,
            "zero fractions read as integers"
        );
        let none = flag(json!({"variants": {"a": 1}, "defaultVariant": "a", "schedule": []}));
        assert!(serde_json::to_value(none)
            .unwrap()
            .get("schedule")
            .is_none());
        let many: Vec<Value> = (0..=MAX_SCHEDULE)
            .map(|i| json!({"at": i, "enabled": true}))
            .collect();
        let entry = SWITCH_PROBLEM;
        let cases = [
            (
                json!({}),
                "featureFlags.f.schedule: must be an array of at most 16 entries".to_string(),
            ),
            (
                json!(many),
                "featureFlags.f.schedule: must be an array of at most 16 entries".into(),
            ),
            (
                json!([{"at": 1}]),
                format!("featureFlags.f.schedule[0]: {entry}"),
            ),
            (
                json!([{"at": 1, "enabled": "yes"}]),
                format!("featureFlags.f.schedule[0]: {entry}"),
            ),
            (
                json!([{"at": -1, "enabled": true}]),
                format!("featureFlags.f.schedule[0]: {entry}"),
            ),
            (
                json!([{"at": 1.5, "enabled": true}]),
                format!("featureFlags.f.schedule[0]: {entry}"),
            ),
            (
                json!([{"at": 1, "enabled": true, "x": 1}]),
                format!("featureFlags.f.schedule[0]: {entry}"),
            ),
            (
                json!([{"at": 5, "enabled": true}, {"at": 5, "enabled": false}]),
                format!("featureFlags.f.schedule[1]: {entry}"),
            ),
        ];
        for (schedule, want) in cases {
            let v = json!({"variants": {"a": 1}, "defaultVariant": "a", "schedule": schedule});
            match Flag::parse("featureFlags.f", "f", &v) {
                Err(DomainError::Invalid(m)) => assert_eq!(m, want),
                other => panic!("{v} gave {other:?}"),
            }
        }
        assert_eq!(MAX_SCHEDULE, 16, "as the message says");
    }

    /// The variant and reason `f` answers at `now` for an empty context with a key.
    fn answer_at(f: &Flag, now: i64) -> (String, Reason) {
        let c = EvalContext {
            now: Millis(now),
            targeting_key: Some("k".into()),
            ..EvalContext::default()
        };
        let e = f
            .evaluate(&Named::default(), &c)
            .unwrap_or_else(|_| f.fallback(c.now));
        (e.variant.to_string(), e.reason)
    }

    #[test]
    fn a_scheduled_definition_takes_over_by_the_clock_and_the_kill_switch_still_wins() {
        let mut v = json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "a",
            "schedule": [{"at": 1000, "set": {"variants": {"c": 3, "d": 4}, "defaultVariant": "c",
                "rules": [{"when": {"plan": {"equals": "pro"}}, "variant": "d"}], "rollout": {"d": 100}}}]});
        let f = flag(v.clone());
        assert_eq!(answer_at(&f, 999), ("a".into(), Reason::Static));
        assert_eq!(answer_at(&f, 1000), ("d".into(), Reason::Split));
        let Flag::Variants(def) = &f else { panic!() };
        assert_eq!(
            serde_json::to_value(def).unwrap()["schedule"],
            v["schedule"]
        );
        v["enabled"] = json!(false);
        assert_eq!(answer_at(&flag(v), 1000), ("c".into(), Reason::Disabled));
    }

    #[test]
    fn a_scheduled_definition_is_checked_like_a_flag_and_keeps_the_flag_s_own_fields() {
        let base = |entry: Value| {
            let v = json!({"variants": {"a": 1}, "defaultVariant": "a", "schedule": [entry]});
            FlagDef::parse("featureFlags.f", "f", v.as_object().unwrap())
        };
        let field = |e: DomainError| match e {
            DomainError::Invalid(text) => text.split(": ").next().unwrap_or_default().to_string(),
            other => panic!("{other:?}"),
        };
        let cases = [
            (
                json!({"at": 5, "set": {"variants": {"a": 1}, "defaultVariant": "z"}}),
                "featureFlags.f.schedule[0].set.defaultVariant",
            ),
            (
                json!({"at": 5, "set": {"variants": {"a": 1}, "defaultVariant": "a", "enabled": false}}),
                "featureFlags.f.schedule[0].set.enabled",
            ),
            (json!({"at": 5}), "featureFlags.f.schedule[0]"),
            (
                json!({"at": 5, "enabled": "yes"}),
                "featureFlags.f.schedule[0]",
            ),
            (
                json!({"at": 5, "enabled": true, "other": 1}),
                "featureFlags.f.schedule[0]",
            ),
        ];
        for (entry, want) in cases {
            assert_eq!(field(base(entry.clone()).unwrap_err()), want, "{entry}");
        }
    }

    /// Every schedule of up to four entries (each `enabled` on, off or absent, with or
    /// without a `set`), settled at each time, answers as the original from then on.
    #[test]
    fn settling_a_schedule_never_changes_what_is_served_from_then_on() {
        let def = |n: i64| json!({"variants": {"a": n, "b": -n}, "defaultVariant": "a"});
        let kinds = [
            json!({"enabled": true}),
            json!({"enabled": false}),
            json!({}),
            json!({"enabled": true, "set": def(7)}),
            json!({"set": def(9)}),
        ];
        let mut schedules = vec![vec![]];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for s in &schedules {
                for k in &kinds {
                    let mut s: Vec<Value> = s.clone();
                    s.push(k.clone());
                    longer.push(s);
                }
            }
            schedules = longer;
        }
        for kinds in schedules
            .iter()
            .filter(|s| s.len() == 4 && !s.contains(&json!({})))
        {
            let schedule: Vec<Value> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut e = k.clone();
                    e["at"] = json!((i as u64 + 1) * 1000);
                    e
                })
                .collect();
            let f = flag(json!({"variants": {"a": 1, "b": 2}, "defaultVariant": "b",
                "schedule": schedule}));
            let Flag::Variants(d) = &f else { panic!() };
            for settle in [500, 1000, 1500, 2500, 3500, 4500] {
                let settled = d.settled(Millis(settle), Millis(settle));
                let Some(settled) = settled else {
                    assert!(settle < 1000);
                    continue;
                };
                assert!(settled.schedule.iter().all(|s| s.at as i64 > settle));
                let settled = Flag::Variants(Box::new(settled));
                for now in [settle, 1999, 2000, 2999, 3000, 3999, 4000, 9999]
                    .iter()
                    .filter(|t| **t >= settle)
                {
                    assert_eq!(
                        answer_at(&settled, *now),
                        answer_at(&f, *now),
                        "{kinds:?} settled at {settle}, at {now}"
                    );
                    assert_eq!(settled.is_enabled(Millis(*now)), f.is_enabled(Millis(*now)));
                }
            }
        }
    }

    #[test]
    fn a_rollback_s_settling_keeps_the_state_of_its_version_and_drops_what_passed_since() {
        let f = flag(json!({"variants": {"a": 1}, "defaultVariant": "a",
            "schedule": [{"at": 1000, "enabled": true}, {"at": 3000, "enabled": false},
                {"at": 5000, "enabled": true}]}));
        let Flag::Variants(d) = &f else { panic!() };
        // Written at 500 (off until 1000), rolled back to at 4000: off now, and on at 5000.
        let back = Flag::Variants(Box::new(d.settled(Millis(500), Millis(4000)).unwrap()));
        assert!(!back.is_enabled(Millis(4000)) && back.is_enabled(Millis(5000)));
        // Written at 2000 (on), rolled back to at 3500: on, and still on at 5000.
        let back = Flag::Variants(Box::new(d.settled(Millis(2000), Millis(3500)).unwrap()));
        assert!(back.is_enabled(Millis(3500)) && back.is_enabled(Millis(9000)));
    }

    #[test]
    fn schedules_switch_by_the_clock_and_the_kill_switch_wins() {
        let window = json!([{"at": 1000, "enabled": true}, {"at": 2000, "enabled": false}]);
        let mut v = json!({"variants": {"on": true, "off": false}, "defaultVariant": "off",
            "rollout": {"on": 100}, "schedule": window});
        let at = |f: &Flag, now: i64| {
            let c = EvalContext {
                now: Millis(now),
                ..EvalContext::default()
            };
            let e = f.evaluate(&Named::default(), &c).unwrap();
            (e.variant.to_string(), e.reason)
        };
        let f = flag(v.clone());
        let off = ("off".to_string(), Reason::Disabled);
        let on = ("on".to_string(), Reason::Split);
        assert_eq!(at(&f, 999), off, "off until the first entry switches it on");
        assert_eq!((at(&f, 1000), at(&f, 1999)), (on.clone(), on.clone()));
        assert_eq!((at(&f, 2000), at(&f, i64::MAX)), (off.clone(), off.clone()));
        assert!(!f.is_enabled(Millis(999)) && f.is_enabled(Millis(1000)));
        // A schedule that starts by switching off is on until then.
        let ends = flag(json!({"variants": {"a": "x"}, "defaultVariant": "a",
            "schedule": [{"at": 1000, "enabled": false}]}));
        assert!(ends.is_enabled(Millis(999)) && !ends.is_enabled(Millis(1000)));
        // `enabled: false` is the kill switch: off whatever the schedule says.
        v["enabled"] = json!(false);
        let killed = flag(v);
        for now in [0, 999, 1000, 1500, 2000] {
            assert_eq!(at(&killed, now), off, "{now}");
        }
    }

    #[test]
    fn a_prerequisite_switched_off_by_its_schedule_is_not_met() {
        let flags = set(json!({
            "a": gated(json!({"b": ["on"]})),
            "b": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "rollout": {"on": 100}, "schedule": [{"at": 1000, "enabled": true}]},
        }))
        .unwrap();
        let a = flags.get("a").unwrap();
        let at = |now| {
            let c = EvalContext {
                now: Millis(now),
                ..EvalContext::default()
            };
            a.evaluate(&flags, &c).unwrap().unmet
        };
        assert_eq!((at(999), at(1000)), (Some("b"), None));
    }

    #[test]
    fn contexts() {
        assert!(EvalContext::from_json(&json!([])).is_err());
        assert!(
            matches!(EvalContext::from_json(&json!({"targetingKey": 1})),
            Err(DomainError::Invalid(m)) if m.starts_with("context.targetingKey:"))
        );
        let c = context(json!({"targetingKey": "k", "a": 1}));
        assert_eq!(c.targeting_key.as_deref(), Some("k"));
        assert_eq!(c.attributes.len(), 1);
    }
}
