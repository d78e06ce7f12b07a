//! S3 settings as the AWS tools read them: the `AWS_*` environment first,
//! then the shared files (`~/.aws/credentials`, `~/.aws/config`, or the
//! paths `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` name) for what
//! the environment leaves out, in the profile `AWS_PROFILE` names (else
//! `default`).
//!
//! Only static settings are read from the files: keys, a session token,
//! the region and `endpoint_url`. SSO and `credential_process` profiles
//! are not run; export their credentials to the environment first
//! (`aws configure export-credentials --format env`).

use std::path::{Path, PathBuf};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use crate::Error;

/// A builder for `bucket` with every setting found.
pub(crate) fn builder(bucket: &str) -> Result<AmazonS3Builder, Error> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = directories::BaseDirs::new().map(|d| d.home_dir().join(".aws"));
    let file = |var: &str, name: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(name)))
    };
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let sources = [
        (
            file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            profile.clone(),
        ),
        // The config file names every profile but the default
        // `[profile NAME]`.
        (
            file("AWS_CONFIG_FILE", "config"),
            if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            },
        ),
    ];
    for (path, section) in sources {
        let Some(path) = path else { continue };
        for (key, value) in read_section(&path, &section)? {
            let config = match key.as_str() {
                "aws_access_key_id" => AmazonS3ConfigKey::AccessKeyId,
                "aws_secret_access_key" => AmazonS3ConfigKey::SecretAccessKey,
                "aws_session_token" => AmazonS3ConfigKey::Token,
                "region" => AmazonS3ConfigKey::Region,
                "endpoint_url" => AmazonS3ConfigKey::Endpoint,
                _ => continue,
            };
            // The environment wins, as it does for the AWS tools.
            if b.get_config_value(&config).is_none() {
                b = b.with_config(config, value);
            }
        }
    }
    // An endpoint named with http:// is plain HTTP on purpose (a MinIO on
    // the build machine, say); the default AWS endpoints are HTTPS.
    let plain = [AmazonS3ConfigKey::Endpoint, AmazonS3ConfigKey::S3Endpoint]
        .iter()
        .filter_map(|k| b.get_config_value(k))
        .any(|e| e.to_ascii_lowercase().starts_with("http://"));
    if plain {
        b = b.with_allow_http(true);
    }
    Ok(b)
}

/// The `key = value` pairs of `[section]` in an AWS INI file (none if the
/// file does not exist). Keys are lower-cased; comments (`#`, `;`) and the
/// indented lines of nested settings (`s3 =` blocks) are skipped.
fn read_section(path: &Path, section: &str) -> Result<Vec<(String, String)>, Error> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut inside = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| Error::AwsConfig {
                path: path.to_owned(),
                line: n + 1,
            })?;
            inside = name.trim() == section;
            continue;
        }
        if !inside {
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| Error::AwsConfig {
            path: path.to_owned(),
            line: n + 1,
        })?;
        let v = v.trim();
        if !v.is_empty() {
            out.push((k.trim().to_ascii_lowercase(), v.to_owned()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_and_nested_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config");
        fs_err::write(
            &p,
            "# comment\n[default]\nregion = eu-west-1\n\n[profile ci]\nRegion=us-east-2\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = path\n; done\n",
        )
        .expect("write");
        assert_eq!(
            read_section(&p, "profile ci").expect("read"),
            vec![
                ("region".to_owned(), "us-east-2".to_owned()),
                (
                    "endpoint_url".to_owned(),
                    "http://127.0.0.1:9000".to_owned()
                ),
            ]
        );
        assert_eq!(
            read_section(&p, "default").expect("read"),
            vec![("region".to_owned(), "eu-west-1".to_owned())]
        );
        assert!(
            read_section(&dir.path().join("absent"), "default")
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_broken_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("credentials");
        fs_err::write(&p, "[default]\naws_access_key_id\n").expect("write");
        match read_section(&p, "default") {
            Err(Error::AwsConfig { path, line }) => {
                assert_eq!((path, line), (p, 2));
            }
            other => panic!("expected AwsConfig, got {other:?}"),
        }
    }
}
