//! Devices as people name them: "Chrome on Windows", "Safari on iPhone", "API client
//! (curl/8.5)", read from a user agent with `woothee`.

use std::sync::LazyLock;

use woothee::parser::Parser;

static PARSER: LazyLock<Parser> = LazyLock::new(Parser::new);

/// The longest product token kept in "API client (…)".
const MAX_CLIENT_LEN: usize = 40;

/// What a person would call the device behind `user_agent`.
pub fn device_name(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent.map(str::trim).filter(|agent| !agent.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let parsed = PARSER.parse(agent);
    let browser = parsed.as_ref().filter(|found| {
        matches!(
            found.category,
            "pc" | "smartphone" | "mobilephone" | "appliance"
        )
    });
    match browser {
        Some(found) => {
            let name = known(found.name).unwrap_or("A browser");
            match known(found.os) {
                Some(os) => format!("{name} on {}", os_name(os)),
                None => name.to_owned(),
            }
        }
        // Not a browser: a script or a library, named by its first product token.
        None => {
            let product: String = agent
                .split_whitespace()
                .next()
                .unwrap_or(agent)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_CLIENT_LEN)
                .collect();
            format!("API client ({product})")
        }
    }
}

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then_some(value)
}

/// Operating systems by the names people use.
fn os_name(os: &str) -> &str {
    match os {
        os if os.starts_with("Windows") => "Windows",
        "Mac OSX" => "macOS",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::device_name;

    #[test]
    fn browsers_are_named_with_their_system() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on macOS",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
        ];
        for (agent, expected) in cases {
            assert_eq!(device_name(Some(agent)), expected, "{agent}");
        }
    }

    #[test]
    fn scripts_are_api_clients() {
        assert_eq!(device_name(Some("curl/8.5")), "API client (curl/8.5)");
        assert_eq!(
            device_name(Some("python-requests/2.32.3")),
            "API client (python-requests/2.32.3)"
        );
        assert_eq!(device_name(Some("reqwest")), "API client (reqwest)");
    }

    #[test]
    fn no_user_agent_is_an_unknown_device() {
        assert_eq!(device_name(None), "Unknown device");
        assert_eq!(device_name(Some("  ")), "Unknown device");
    }
}
