//! The parts of the OCI image layout and manifest documents the push needs
//! (opencontainers/image-spec `image-layout.md`, `image-index.md`, `manifest.md`,
//! `descriptor.md`), parsed strictly enough to refuse what cannot be pushed safely.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Media type of an OCI image manifest.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Docker schema 2 manifest (accepted as well).
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
}

/// A descriptor's platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    pub(crate) architecture: String,
    pub(crate) os: String,
}

/// `index.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Index {
    #[serde(rename = "schemaVersion")]
    pub(crate) schema_version: u32,
    pub(crate) manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub(crate) schema_version: u32,
    #[serde(default)]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<64 lower-case hex>` digest; other algorithms are refused.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

/// The one image manifest of an index: the only manifest, or the linux/amd64 one among
/// several. `Err` says why none can be chosen.
pub(crate) fn choose_manifest(index: &Index) -> Result<&Descriptor, String> {
    if index.schema_version != 2 {
        return Err(format!(
            "index.json: schemaVersion {} (expected 2)",
            index.schema_version
        ));
    }
    let images: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.media_type == OCI_MANIFEST || d.media_type == DOCKER_MANIFEST)
        .collect();
    let chosen = match images.as_slice() {
        [] => {
            return Err(format!(
                "index.json: no image manifest (media type {OCI_MANIFEST})"
            ));
        }
        [only] => *only,
        many => many
            .iter()
            .copied()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| {
                format!(
                    "index.json: {} image manifests and none for linux/amd64",
                    many.len()
                )
            })?,
    };
    if sha256_hex(&chosen.digest).is_none() {
        return Err(format!(
            "index.json: manifest digest {:?} is not sha256:<64 hex digits>",
            chosen.digest
        ));
    }
    Ok(chosen)
}

/// Parses and checks a manifest: schema 2, every digest sha256.
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| format!("the image manifest: {e}"))?;
    if manifest.schema_version != 2 {
        return Err(format!(
            "the image manifest: schemaVersion {} (expected 2)",
            manifest.schema_version
        ));
    }
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if sha256_hex(&d.digest).is_none() {
            return Err(format!(
                "the image manifest: digest {:?} is not sha256:<64 hex digits>",
                d.digest
            ));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests() {
        assert_eq!(sha256_digest(b""), D);
        assert!(sha256_hex(D).is_some());
        for bad in [
            "sha512:00",
            "sha256:E3B0",
            &D.to_uppercase(),
            "sha256:../../x",
        ] {
            assert!(sha256_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn chooses_the_only_or_the_amd64_manifest() {
        let one = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}}]}}"#
        );
        let index: Index = serde_json::from_str(&one).unwrap();
        assert_eq!(choose_manifest(&index).unwrap().size, 3);
        let two = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":2,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let index: Index = serde_json::from_str(&two).unwrap();
        assert_eq!(choose_manifest(&index).unwrap().size, 2);
        let none: Index = serde_json::from_str(r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
        assert!(
            choose_manifest(&none)
                .unwrap_err()
                .contains("no image manifest")
        );
    }

    #[test]
    fn manifest_with_a_bad_digest_is_refused() {
        let bad = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D}","size":1}},"layers":[{{"mediaType":"x","digest":"md5:1","size":1}}]}}"#
        );
        assert!(
            parse_manifest(bad.as_bytes())
                .unwrap_err()
                .contains("\"md5:1\"")
        );
    }
}
