//! The settings an adapter receives in `configure`, the declarations of the options it
//! accepts, and a slot to keep its parsed configuration until the next call.
//!
//! The host checks `Stellar.ProviderSettings` against the options an adapter declares in
//! `describe` (type, known key) before `configure` sees them; [`option`] keeps those
//! declarations to one line each. [`Settings`] still checks keys and values itself: the
//! host-supplied keys are no declared options, and a value of the right type may still be
//! out of the adapter's range.
//!
//! Component exports are plain functions (no `self`), so an adapter that needs state between
//! `configure` and `deploy-function` keeps it in a `static`. [`Configured`] is that static,
//! with a clear error when a call arrives before `configure`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;

use crate::{OptionDecl, OptionType, ProviderError};

/// Declares one option of `Stellar.ProviderSettings` for `describe`:
/// `option("region", OptionType::Text, None, "AWS region")`. The default is only shown to the
/// user (`stellar plugins inspect`); the adapter applies it itself.
pub fn option(
    name: &str,
    value_type: OptionType,
    default_value: Option<&str>,
    description: &str,
) -> OptionDecl {
    OptionDecl {
        name: name.to_string(),
        value_type,
        default_value: default_value.map(str::to_string),
        description: description.to_string(),
    }
}

/// A trimmed value, or `None` when absent or blank (for settings and credential values).
pub fn nonempty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The `configure` settings as a map (for a repeated key the last value wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl From<Vec<(String, String)>> for Settings {
    fn from(list: Vec<(String, String)>) -> Self {
        Self {
            values: list.into_iter().collect(),
        }
    }
}

impl Settings {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of `key`; missing or empty is an `invalid` error naming the key.
    pub fn require(&self, key: &str) -> Result<&str, ProviderError> {
        match self.get(key) {
            None => Err(ProviderError::Invalid(format!("missing setting `{key}`"))),
            Some(v) if v.trim().is_empty() => {
                Err(ProviderError::Invalid(format!("setting `{key}` is empty")))
            }
            Some(v) => Ok(v),
        }
    }

    /// Parses the value of `key` if present; a value that does not parse is `invalid`.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, ProviderError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.trim().parse::<T>().map_err(|e| {
                    ProviderError::Invalid(format!("setting `{key}` = {v:?} is not valid: {e}"))
                })
            })
            .transpose()
    }

    /// The trimmed value of `key`, or `None` when absent or blank.
    pub fn nonempty(&self, key: &str) -> Option<&str> {
        nonempty(self.get(key))
    }

    /// The integer value of `key` (`default` when absent), which must lie in `min..=max`;
    /// otherwise `invalid`, naming the key, the value and the range.
    pub fn bounded(
        &self,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ProviderError> {
        let value = self.parse::<u64>(key)?.unwrap_or(default);
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ProviderError::Invalid(format!(
                "setting `{key}` = {value} is out of range ({min} to {max})"
            )))
        }
    }

    /// Fails with `invalid` if a key outside `known` is present (catches typos).
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), ProviderError> {
        match self.values.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(ProviderError::Invalid(format!(
                "unknown setting `{k}` (known: {})",
                known.join(", ")
            ))),
        }
    }

    /// Iterates over all `(key, value)` pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A slot for an adapter's configuration, set by `configure` and read by the other calls.
///
/// ```ignore
/// static CONFIG: Configured<MyConfig> = Configured::new();
/// // configure: CONFIG.set(parsed);   other calls: let cfg = CONFIG.get()?;
/// ```
#[derive(Debug)]
pub struct Configured<T> {
    slot: Mutex<Option<T>>,
}

impl<T> Default for Configured<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Configured<T> {
    /// An empty slot (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }

    /// Stores (or replaces) the configuration.
    pub fn set(&self, value: T) {
        // A poisoned lock only means an earlier call panicked; the data is still usable.
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
    }
}

impl<T: Clone> Configured<T> {
    /// A copy of the configuration, or `invalid` when `configure` has not succeeded yet.
    pub fn get(&self) -> Result<T, ProviderError> {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                ProviderError::Invalid(
                    "the adapter is not configured: `configure` must succeed first".to_string(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn require_names_the_missing_key() {
        let s = settings(&[("token", "abc")]);
        assert_eq!(s.require("token"), Ok("abc"));
        assert_eq!(
            s.require("control-url"),
            Err(ProviderError::Invalid(
                "missing setting `control-url`".to_string()
            ))
        );
        let s = settings(&[("token", "  ")]);
        assert_eq!(
            s.require("token"),
            Err(ProviderError::Invalid(
                "setting `token` is empty".to_string()
            ))
        );
    }

    #[test]
    fn last_value_wins_and_parse_reports_bad_values() {
        let s = settings(&[("n", "1"), ("n", "2"), ("bad", "x")]);
        assert_eq!(s.parse::<u32>("n"), Ok(Some(2)));
        assert_eq!(s.parse::<u32>("absent"), Ok(None));
        let err = s.parse::<u32>("bad").unwrap_err();
        assert!(
            matches!(&err, ProviderError::Invalid(m) if m.starts_with("setting `bad` = \"x\"")),
            "{err:?}"
        );
    }

    #[test]
    fn nonempty_and_bounded_values() {
        let s = settings(&[("a", " x "), ("b", "  "), ("n", "5"), ("big", "99")]);
        assert_eq!(s.nonempty("a"), Some("x"));
        assert_eq!(s.nonempty("b"), None);
        assert_eq!(s.nonempty("absent"), None);
        assert_eq!(s.bounded("n", 1, 1, 10), Ok(5));
        assert_eq!(s.bounded("absent", 7, 1, 10), Ok(7));
        assert_eq!(
            s.bounded("big", 1, 1, 10),
            Err(ProviderError::Invalid(
                "setting `big` = 99 is out of range (1 to 10)".to_string()
            ))
        );
    }

    #[test]
    fn deny_unknown_lists_known_keys() {
        let s = settings(&[("token", "a"), ("tokn", "b")]);
        assert_eq!(
            s.deny_unknown(&["token", "control-url"]),
            Err(ProviderError::Invalid(
                "unknown setting `tokn` (known: token, control-url)".to_string()
            ))
        );
        assert_eq!(s.deny_unknown(&["token", "tokn"]), Ok(()));
    }

    #[test]
    fn option_declarations() {
        assert_eq!(
            option(
                "wait-timeout-s",
                OptionType::Integer,
                Some("300"),
                "seconds"
            ),
            OptionDecl {
                name: "wait-timeout-s".to_string(),
                value_type: OptionType::Integer,
                default_value: Some("300".to_string()),
                description: "seconds".to_string(),
            }
        );
        assert_eq!(option("x", OptionType::Text, None, "").default_value, None);
    }

    #[test]
    fn configured_errors_before_set() {
        let slot: Configured<u32> = Configured::new();
        assert!(matches!(slot.get(), Err(ProviderError::Invalid(_))));
        slot.set(7);
        assert_eq!(slot.get(), Ok(7));
        slot.set(8);
        assert_eq!(slot.get(), Ok(8));
    }
}
