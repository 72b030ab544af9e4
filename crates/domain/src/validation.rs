//! Field-level validation errors, collected so a client learns every problem
//! with its input at once.

use serde::Serialize;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the client sent it (`name`, `skip`, …).
    pub field: String,
    /// A human-readable explanation.
    pub message: String,
    /// A stable machine-readable kind (`too_long`, `missing`, `unknown_field`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A non-empty-when-failed list of [`FieldError`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(Vec<FieldError>);

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

    /// Adds an error.
    pub fn push(&mut self, field: &str, kind: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            message: message.into(),
            kind: kind.to_owned(),
        });
    }

    /// Keeps the value of `result`, or records its errors and returns `None`.
    pub fn collect<T>(&mut self, result: Result<T, FieldErrors>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errors) => {
                self.0.extend(errors.0);
                None
            }
        }
    }

    /// True when no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded errors.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
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
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}
