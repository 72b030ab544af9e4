//! Validated field types any resource can use, each checked once by the
//! rules of [`rules`] (which request bodies validate with too):
//!
//! - [`ShortText`]: a name or a title: trimmed, 1–255 characters, at least
//!   one visible;
//! - [`LongText`]: a description or notes: kept as written, at most 65,535
//!   characters.
//!
//! Both carry the name of their field (a [`Field`] marker) so their errors
//! say which one: declare one with [`field!`](crate::field).

pub mod rules;

use std::marker::PhantomData;

use serde::{Serialize, Serializer};
use validator::ValidationError;

use crate::validation::FieldErrors;

/// A field's name, as clients write it and errors report it.
pub trait Field: 'static {
    /// The JSON key.
    const NAME: &'static str;
}

/// Declares a [`Field`] marker: `field!(pub Title = "title");`.
#[macro_export]
macro_rules! field {
    ($(#[$meta:meta])* $vis:vis $marker:ident = $name:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis struct $marker;

        impl $crate::fields::Field for $marker {
            const NAME: &'static str = $name;
        }
    };
}

/// A rule's failure as the field error of `field`.
fn field_error(field: &str, error: &ValidationError) -> FieldErrors {
    let message = error.message.as_deref().unwrap_or("is invalid");
    FieldErrors::single(field, &error.code, message)
}

macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, $rule:path, $stored:expr) => {
        $(#[$meta])*
        pub struct $name<F>(String, PhantomData<fn() -> F>);

        impl<F: Field> $name<F> {
            /// Validates a client's value.
            ///
            /// # Errors
            /// A field error on `F::NAME` when the rule refuses it.
            pub fn parse(raw: &str) -> Result<Self, FieldErrors> {
                $rule(raw).map_err(|e| field_error(F::NAME, &e))?;
                let stored: fn(&str) -> &str = $stored;
                Ok(Self(stored(raw).to_owned(), PhantomData))
            }

            /// Rebuilds a value read back from storage, where it was validated on the way in.
            pub fn from_trusted(stored: String) -> Self {
                Self(stored, PhantomData)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<F> Clone for $name<F> {
            fn clone(&self) -> Self {
                Self(self.0.clone(), PhantomData)
            }
        }

        impl<F> PartialEq for $name<F> {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0
            }
        }

        impl<F> Eq for $name<F> {}

        impl<F> std::fmt::Debug for $name<F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl<F> Serialize for $name<F> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
    };
}

text_type!(
    /// A short text ([`rules::short_text`]): stored trimmed of whitespace;
    /// format characters are kept as given.
    ShortText,
    rules::short_text,
    str::trim
);

text_type!(
    /// A long text ([`rules::long_text`]): kept as written.
    LongText,
    rules::long_text,
    |raw| raw
);

#[cfg(test)]
mod tests {
    use super::*;

    crate::field!(Title = "title");

    fn kind(result: Result<impl std::fmt::Debug, FieldErrors>) -> (String, String) {
        let errors = result.unwrap_err();
        let error = &errors.as_slice()[0];
        (error.field.clone(), error.kind.clone())
    }

    #[test]
    fn short_texts_are_trimmed_bounded_and_name_their_field() {
        assert_eq!(ShortText::<Title>::parse("  Plan \n").unwrap().as_str(), "Plan");
        assert_eq!(
            kind(ShortText::<Title>::parse("   ")),
            ("title".into(), "too_short".into())
        );
        assert!(ShortText::<Title>::parse(&"é".repeat(255)).is_ok());
        assert_eq!(kind(ShortText::<Title>::parse(&"a".repeat(256))).1, "too_long");
        assert_eq!(kind(ShortText::<Title>::parse("a\0b")).1, "nul_character");
        assert_eq!(kind(ShortText::<Title>::parse("\u{200B}\u{FEFF}")).1, "too_short");
    }

    #[test]
    fn long_texts_are_kept_as_written_and_bounded() {
        assert_eq!(LongText::<Title>::parse(" x ").unwrap().as_str(), " x ");
        assert!(LongText::<Title>::parse(&"x".repeat(65_535)).is_ok());
        assert_eq!(kind(LongText::<Title>::parse(&"x".repeat(65_536))).1, "too_long");
        assert_eq!(kind(LongText::<Title>::parse("nul\0")).1, "nul_character");
    }
}
