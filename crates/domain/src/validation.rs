//! Field-level validation errors, collected so a client learns every problem
//! with its input at once — up to a cap.
//!
//! The list grows with the input (one entry per unknown key of a body, say),
//! so it is bounded: at most [`MAX_FIELD_ERRORS`] entries, each field name cut
//! to [`MAX_FIELD_NAME_CHARS`] characters. An error pushed beyond the cap is
//! dropped and the list remembers it was truncated; parsers stop examining
//! their input once [`FieldErrors::is_truncated`] is true, so the work and
//! memory spent on a hostile body stay small whatever its size.

use serde::Serialize;

/// Most field errors a list keeps; later ones are dropped (and counted as truncation).
pub const MAX_FIELD_ERRORS: usize = 50;
/// Longest field name kept in an error, in characters (a client may send any key).
pub const MAX_FIELD_NAME_CHARS: usize = 128;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's name as the client sent it (`name`, `skip`, …), at most
    /// 128 characters.
    #[cfg_attr(feature = "openapi", schema(example = "name"))]
    pub field: String,
    /// A human-readable explanation.
    pub message: String,
    /// A stable machine-readable kind: `missing`, `too_short`, `too_long`,
    /// `type_error`, `null`, `nul_character`, `unknown_field`,
    /// `duplicate_field`, `out_of_range`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "too_short"))]
    pub kind: String,
}

/// A bounded, non-empty-when-failed list of [`FieldError`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    errors: Vec<FieldError>,
    truncated: bool,
}

impl Serialize for FieldErrors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.errors.serialize(serializer)
    }
}

/// `name` cut to [`MAX_FIELD_NAME_CHARS`] characters.
fn bounded_name(name: &str) -> String {
    match name.char_indices().nth(MAX_FIELD_NAME_CHARS) {
        Some((end, _)) => name[..end].to_owned(),
        None => name.to_owned(),
    }
}

impl FieldErrors {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list holding one error.
    pub fn single(field: &str, kind: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, kind, message);
        errors
    }

    /// Adds an error, or marks the list truncated when it is full.
    pub fn push(&mut self, field: &str, kind: &str, message: impl Into<String>) {
        if self.errors.len() >= MAX_FIELD_ERRORS {
            self.truncated = true;
            return;
        }
        self.errors.push(FieldError {
            field: bounded_name(field),
            message: message.into(),
            kind: kind.to_owned(),
        });
    }

    /// Keeps the value of `result`, or records its errors and returns `None`.
    pub fn collect<T>(&mut self, result: Result<T, FieldErrors>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(other) => {
                self.truncated |= other.truncated;
                for error in other.errors {
                    self.push(&error.field, &error.kind, error.message);
                }
                None
            }
        }
    }

    /// True when no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// True when errors were dropped because the list was full: a parser
    /// should stop examining its input.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The recorded errors.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.errors
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    ///
    /// # Errors
    /// Returns the list itself when it holds at least one error.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))?;
        if self.truncated {
            f.write_str("; …")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_times_too_many_errors_keep_the_first_fifty_and_say_so() {
        let mut errors = FieldErrors::new();
        for i in 0..MAX_FIELD_ERRORS * 1000 {
            errors.push(&format!("k{i}"), "unknown_field", "unknown field");
        }
        assert_eq!(errors.as_slice().len(), MAX_FIELD_ERRORS);
        assert!(errors.is_truncated());
        assert_eq!(errors.as_slice()[49].field, "k49");
    }

    #[test]
    fn fifty_errors_are_not_a_truncation() {
        let mut errors = FieldErrors::new();
        for i in 0..MAX_FIELD_ERRORS {
            errors.push(&format!("k{i}"), "unknown_field", "unknown field");
        }
        assert!(!errors.is_truncated());
    }

    #[test]
    fn long_field_names_are_cut_at_a_character_boundary() {
        let errors = FieldErrors::single(&"é".repeat(10_000), "unknown_field", "unknown field");
        assert_eq!(errors.as_slice()[0].field.chars().count(), MAX_FIELD_NAME_CHARS);
        let short = FieldErrors::single("name", "missing", "is required");
        assert_eq!(short.as_slice()[0].field, "name");
    }

    #[test]
    fn collecting_into_a_full_list_truncates_it() {
        let mut errors = FieldErrors::new();
        for i in 0..MAX_FIELD_ERRORS {
            errors.push(&format!("k{i}"), "x", "x");
        }
        assert_eq!(errors.collect::<()>(Err(FieldErrors::single("name", "x", "x"))), None);
        assert!(errors.is_truncated());
    }
}
