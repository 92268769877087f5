//! The binaries' `token` subcommand: `<app> token --sub 42 --name Ada
//! [--rooms 'general,team-*'] [--symbols AAPL,MSFT] [--ttl 1h] [--key
//! private.pem]` prints a token signed with the configured key.

use crate::config::{AuthConfig, PUBLIC_KEY_VAR, SECRET_VAR};
use crate::mint::{TokenRequest, mint, parse_ttl};
use anyhow::{Context, Result, bail};
use std::time::Duration;

const USAGE: &str = "usage: token --sub <id> [--name <name>] [--rooms <room,prefix*,…>] \
                     [--symbols <SYM,…>] [--ttl <90s|30m|1h|2d>] [--key <private PEM>]";

/// The token the command line asks for, or `None` when the first argument
/// (after the program's name) is not `token`: then the binary serves.
pub fn token_from_args(args: impl IntoIterator<Item = String>) -> Result<Option<String>> {
    let mut args = args.into_iter();
    if args.next().as_deref() != Some("token") {
        return Ok(None);
    }
    let parsed = parse(args)?;
    let config = AuthConfig::from_env()?.with_context(|| {
        format!("set {SECRET_VAR} (or {PUBLIC_KEY_VAR} and --key) to mint a token")
    })?;
    let private_pem = match &parsed.key {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read {path:?}"))?),
        None => None,
    };
    mint(&config, private_pem.as_deref(), &parsed.request).map(Some)
}

struct Parsed {
    request: TokenRequest,
    key: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Parsed> {
    let mut request = TokenRequest {
        sub: String::new(),
        name: None,
        rooms: None,
        symbols: None,
        ttl: Duration::from_secs(3600),
    };
    let mut key = None;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sub" => request.sub = value,
            "--name" => request.name = Some(value),
            "--rooms" => request.rooms = Some(list(&value)),
            "--symbols" => request.symbols = Some(list(&value)),
            "--ttl" => request.ttl = parse_ttl(&value)?,
            "--key" => key = Some(value),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if request.sub.trim().is_empty() {
        bail!("--sub is required\n{USAGE}");
    }
    Ok(Parsed { request, key })
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = String> {
        line.split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_options_fill_the_request() {
        let parsed = parse(args("--sub 42 --name Ada --rooms team-*,general --ttl 2h")).unwrap();
        assert_eq!(parsed.request.sub, "42");
        assert_eq!(parsed.request.name.as_deref(), Some("Ada"));
        let rooms = vec!["team-*".to_owned(), "general".to_owned()];
        assert_eq!(parsed.request.rooms, Some(rooms));
        assert_eq!(parsed.request.ttl, Duration::from_secs(7200));
    }

    #[test]
    fn a_missing_sub_or_value_or_an_unknown_option_is_an_error() {
        assert!(parse(args("--name Ada")).is_err());
        assert!(parse(args("--sub")).is_err());
        assert!(parse(args("--sub 1 --color red")).is_err());
    }

    #[test]
    fn other_arguments_start_the_server() {
        assert!(token_from_args(args("serve")).unwrap().is_none());
        assert!(token_from_args(Vec::new()).unwrap().is_none());
    }
}
