//! Reading a setting from the environment with a clear error: a bad value
//! stops the server at start-up with the variable's name, instead of
//! running with a surprise.

use anyhow::Context;
use std::str::FromStr;

/// Reads `name`, or `default` when it is unset or empty.
pub fn env_or<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("environment variable {name}={raw:?} is invalid")),
        _ => Ok(default),
    }
}

/// Reads `name` when it is set and not empty.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|raw| raw.trim().to_owned())
        .filter(|raw| !raw.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_fall_back_to_defaults() {
        assert_eq!(env_or("OPS_TEST_SURELY_UNSET_VARIABLE", 42u32).unwrap(), 42);
    }
}
