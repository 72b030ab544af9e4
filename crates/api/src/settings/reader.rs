//! Reading variables: one line per problem, naming the variable, and the
//! secret type that never prints.

use std::collections::HashMap;
use std::str::FromStr;

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The variables, and the problems found while reading them.
pub struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    /// Fatal problems, one line each.
    pub errors: Vec<String>,
}

impl<'a> Reader<'a> {
    /// A reader of `vars`.
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            errors: Vec::new(),
        }
    }

    /// The trimmed value, `None` when unset or blank.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value exactly as given (not trimmed; `Some("")` when set empty).
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The value or `default`.
    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_owned()
    }

    /// The parsed value or `default`; an unparsable value is an error.
    pub fn parse<T: FromStr>(&mut self, key: &str, default: T, what: &str) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.errors.push(format!("{key}: expected {what}, got {raw:?}"));
                default
            }),
        }
    }

    /// An integer in `min..=max`, or `default`; anything else is an error.
    pub fn bounded<T>(&mut self, key: &str, default: T, min: T, max: T, unit: &str) -> T
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let what = format!("{unit} from {min} to {max}");
        let value = self.parse(key, default, &what);
        if value < min || value > max {
            self.errors.push(format!("{key}: expected {what}, got {value}"));
            return default;
        }
        value
    }

    /// A boolean (`true/false`, `1/0`, `yes/no`, `on/off`).
    pub fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                self.errors
                    .push(format!("{key}: expected true or false, got {other:?}"));
                default
            }
        }
    }

    /// A comma-separated list, entries trimmed, blanks dropped.
    pub fn list(&self, key: &str, default: &str) -> Vec<String> {
        self.string(key, default)
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_values_outside_their_range_are_one_error_line() {
        let vars: HashMap<String, String> = [("WORKERS", "0"), ("OTHER", "513")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut r = Reader::new(&vars);
        assert_eq!(r.bounded("WORKERS", 2usize, 1, 512, "a number of threads"), 2);
        assert_eq!(r.bounded("OTHER", 2usize, 1, 512, "a number of threads"), 2);
        assert_eq!(r.bounded("UNSET", 7usize, 1, 512, "a number"), 7);
        assert_eq!(
            r.errors,
            vec![
                "WORKERS: expected a number of threads from 1 to 512, got 0",
                "OTHER: expected a number of threads from 1 to 512, got 513",
            ]
        );
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(<redacted>)");
    }
}
