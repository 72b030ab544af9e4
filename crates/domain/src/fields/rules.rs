//! The rules of text fields, written once as `validator` custom functions:
//! request types in the HTTP layer validate with them (`#[validate(custom(…))]`),
//! and the domain's value types ([`super::ShortText`], [`super::LongText`])
//! enforce them when they are built, so no rule exists in two copies.
//!
//! Each rule's `code` is the stable `type` of the field error a client sees.

use std::borrow::Cow;

use validator::ValidationError;

/// Longest allowed short text (a name, a title), in characters, after trimming.
pub const SHORT_TEXT_MAX_CHARS: usize = 255;
/// Longest allowed long text (a description, notes), in characters.
pub const LONG_TEXT_MAX_CHARS: usize = 65_535;

/// True for characters that display as nothing: whitespace and Unicode format
/// characters (general category Cf: U+200B zero width space, U+FEFF, U+200C/D,
/// U+2060, U+00AD, …). A name made only of these would show as empty.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_whitespace() || c.general_category() == GeneralCategory::Format
}

fn error(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// A short text (a name, a title), as the client sent it (it is stored
/// trimmed of whitespace): no NUL, at least one visible character, at most
/// 255 characters once trimmed.
///
/// # Errors
/// `nul_character`, `too_short` or `too_long`.
pub fn short_text(raw: &str) -> Result<(), ValidationError> {
    let trimmed = raw.trim();
    if trimmed.contains('\0') {
        return Err(error("nul_character", "must not contain NUL characters"));
    }
    if trimmed.chars().all(is_invisible) {
        return Err(error(
            "too_short",
            "must not be empty or only whitespace or invisible characters",
        ));
    }
    if trimmed.chars().count() > SHORT_TEXT_MAX_CHARS {
        return Err(error(
            "too_long",
            format!("must be at most {SHORT_TEXT_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A long text (a description, notes), kept as written: no NUL, at most
/// 65,535 characters.
///
/// # Errors
/// `nul_character` or `too_long`.
pub fn long_text(raw: &str) -> Result<(), ValidationError> {
    if raw.contains('\0') {
        return Err(error("nul_character", "must not contain NUL characters"));
    }
    if raw.chars().count() > LONG_TEXT_MAX_CHARS {
        return Err(error(
            "too_long",
            format!("must be at most {LONG_TEXT_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}
