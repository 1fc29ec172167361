//! AWS credentials where the AWS CLI and SDKs find them: the standard environment variables,
//! then a profile of the shared credentials file; and the default region the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{CredentialSources, CredentialsError, read_optional};

/// AWS access keys. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Where they were found, for messages (`environment`, `profile default in ~/.aws/...`).
    pub origin: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("origin", &self.origin)
            .finish()
    }
}

impl AwsCredentials {
    /// The standard lookup order of the AWS CLI and SDKs, limited to static keys: the
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then
    /// the profile `AWS_PROFILE` (default `default`) of the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`).
    pub fn load(sources: &CredentialSources) -> Result<Self, CredentialsError> {
        if let (Some(id), Some(secret)) = (
            sources.var("AWS_ACCESS_KEY_ID"),
            sources.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(Self {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: sources.var("AWS_SESSION_TOKEN").map(str::to_owned),
                origin: "environment".into(),
            });
        }
        let profile = aws_profile(sources);
        let file = shared_file(sources, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let missing = || CredentialsError::AwsMissing {
            file: display(file.as_deref()),
            searched: format!(
                "environment, profile `{profile}` in {}",
                display(file.as_deref())
            ),
        };
        let Some(path) = file.as_deref() else {
            return Err(missing());
        };
        let Some(text) = read_optional(path)? else {
            return Err(missing());
        };
        let ini = parse_ini(&text);
        let Some(section) = ini.get(&profile) else {
            return Err(missing());
        };
        let get = |key: &'static str| {
            section
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| CredentialsError::AwsIncompleteProfile {
                    profile: profile.clone(),
                    file: path.display().to_string(),
                    key,
                })
        };
        Ok(Self {
            access_key_id: get("aws_access_key_id")?,
            secret_access_key: get("aws_secret_access_key")?,
            session_token: section
                .get("aws_session_token")
                .filter(|v| !v.is_empty())
                .cloned(),
            origin: format!("profile `{profile}` in {}", path.display()),
        })
    }

    /// The values of the `aws` credential (plus `region` when the caller found one).
    pub fn into_values(self) -> Vec<(String, String)> {
        let mut settings = vec![
            ("access-key-id".to_owned(), self.access_key_id),
            ("secret-access-key".to_owned(), self.secret_access_key),
        ];
        if let Some(token) = self.session_token {
            settings.push(("session-token".to_owned(), token));
        }
        settings
    }
}

/// The AWS region when the experiment does not name one: `AWS_REGION`, `AWS_DEFAULT_REGION`,
/// then `region` of the profile in the shared config file (`AWS_CONFIG_FILE`, default
/// `~/.aws/config`, section `[default]` or `[profile NAME]`).
pub fn aws_default_region(sources: &CredentialSources) -> Result<Option<String>, CredentialsError> {
    if let Some(region) = sources
        .var("AWS_REGION")
        .or_else(|| sources.var("AWS_DEFAULT_REGION"))
    {
        return Ok(Some(region.to_owned()));
    }
    let Some(path) = shared_file(sources, "AWS_CONFIG_FILE", "config") else {
        return Ok(None);
    };
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let profile = aws_profile(sources);
    let section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    Ok(parse_ini(&text)
        .get(&section)
        .and_then(|s| s.get("region"))
        .filter(|r| !r.is_empty())
        .cloned())
}

fn aws_profile(sources: &CredentialSources) -> String {
    sources.var("AWS_PROFILE").unwrap_or("default").to_owned()
}

fn shared_file(sources: &CredentialSources, env_name: &str, file: &str) -> Option<PathBuf> {
    sources
        .var(env_name)
        .map(PathBuf::from)
        .or_else(|| sources.home.as_ref().map(|h| h.join(".aws").join(file)))
}

fn display(path: Option<&Path>) -> String {
    path.map_or_else(
        || "~/.aws/credentials (no HOME)".to_owned(),
        |p| p.display().to_string(),
    )
}

/// The INI dialect of the AWS shared files: `[section]`, `key = value`, `#`/`;` comments.
/// Keys are lower-cased; nested (indented) sub-keys are skipped.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(env: &[(&str, &str)], home: Option<&Path>) -> CredentialSources {
        CredentialSources {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home: home.map(Path::to_owned),
        }
    }

    const CREDENTIALS: &str = "\
# comment
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret-default

[bench]
AWS_ACCESS_KEY_ID=AKIDBENCH
aws_secret_access_key = secret bench
aws_session_token = token-bench
s3 =
  max_concurrent_requests = 20

[broken]
aws_access_key_id = AKIDBROKEN
";

    fn home_with(credentials: &str, config: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().expect("tempdir");
        let aws = home.path().join(".aws");
        fs_err::create_dir_all(&aws).expect("mkdir");
        fs_err::write(aws.join("credentials"), credentials).expect("write");
        fs_err::write(aws.join("config"), config).expect("write");
        home
    }

    #[test]
    fn environment_wins() {
        let home = home_with(CREDENTIALS, "");
        let creds = AwsCredentials::load(&sources(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "secret-env"),
                ("AWS_SESSION_TOKEN", "tok"),
            ],
            Some(home.path()),
        ))
        .expect("found");
        assert_eq!(creds.access_key_id, "AKIDENV");
        assert_eq!(creds.session_token.as_deref(), Some("tok"));
        assert_eq!(creds.origin, "environment");
    }

    #[test]
    fn profiles_from_the_shared_file() {
        let home = home_with(CREDENTIALS, "");
        let default = AwsCredentials::load(&sources(&[], Some(home.path()))).expect("default");
        assert_eq!(default.access_key_id, "AKIDDEFAULT");
        assert_eq!(default.session_token, None);
        let bench = AwsCredentials::load(&sources(&[("AWS_PROFILE", "bench")], Some(home.path())))
            .expect("bench");
        assert_eq!(bench.access_key_id, "AKIDBENCH");
        assert_eq!(bench.secret_access_key, "secret bench");
        assert_eq!(bench.session_token.as_deref(), Some("token-bench"));
        assert!(bench.origin.contains("`bench`"), "{}", bench.origin);
    }

    #[test]
    fn missing_and_incomplete_profiles_are_clear_errors() {
        let home = home_with(CREDENTIALS, "");
        let err = AwsCredentials::load(&sources(&[("AWS_PROFILE", "nope")], Some(home.path())))
            .expect_err("missing");
        assert!(err.to_string().contains("profile `nope`"), "{err}");
        let err = AwsCredentials::load(&sources(&[("AWS_PROFILE", "broken")], Some(home.path())))
            .expect_err("incomplete");
        assert!(
            err.to_string().contains("lacks `aws_secret_access_key`"),
            "{err}"
        );
        let empty = tempfile::tempdir().expect("tempdir");
        let err = AwsCredentials::load(&sources(&[], Some(empty.path()))).expect_err("no file");
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let creds = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("session-secret".into()),
            origin: "environment".into(),
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("session-secret"));
        assert_eq!(creds.into_values().len(), 3);
    }

    #[test]
    fn region_from_env_then_config_profile() {
        let home = home_with(
            "",
            "[default]\nregion = eu-west-1\n[profile bench]\nregion = ap-south-1\n",
        );
        let region = |env: &[(&str, &str)]| {
            aws_default_region(&sources(env, Some(home.path()))).expect("reads")
        };
        assert_eq!(
            region(&[("AWS_REGION", "us-west-2")]).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            region(&[("AWS_DEFAULT_REGION", "us-east-2")]).as_deref(),
            Some("us-east-2")
        );
        assert_eq!(region(&[]).as_deref(), Some("eu-west-1"));
        assert_eq!(
            region(&[("AWS_PROFILE", "bench")]).as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(region(&[("AWS_PROFILE", "other")]), None);
    }
}
