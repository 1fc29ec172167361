//! Uploading the package to the deployment container: one Put Blob (block blob) streamed
//! from the host's artifact, authorised with SharedKey (the account key from ARM's
//! `listKeys`). A single Put Blob takes up to 5000 MiB since version 2019-12-12, far above any
//! package stellar builds.

use stellar_guest_sdk::http::{BaseUrl, Body, Method};
use stellar_guest_sdk::{Artifact, ProviderError, ProviderResult, errors};

use crate::model::BLOB_API;
use crate::shared_key::{self, Signable};

/// `PUT <base>/<container>/<blob>` with the artifact as the body.
pub(crate) fn put_block_blob(
    base: &str,
    account: &str,
    key: &str,
    container: &str,
    blob: &str,
    artifact: &Artifact,
) -> ProviderResult<()> {
    let base =
        BaseUrl::parse(base).map_err(|e| ProviderError::Invalid(format!("blob endpoint: {e}")))?;
    let template = base.request(Method::Put, &format!("/{container}/{blob}"));
    let path = template.path_and_query.clone();
    let date = shared_key::http_date(stellar_guest_sdk::unix_seconds());
    let length = artifact.size().to_string();
    let headers: [(&str, &str); 5] = [
        ("content-length", &length),
        ("content-type", "application/zip"),
        ("x-ms-blob-type", "BlockBlob"),
        ("x-ms-date", &date),
        ("x-ms-version", BLOB_API),
    ];
    let authorization = shared_key::authorization(
        key,
        &Signable {
            method: "PUT",
            account,
            path: &path,
            query: &[],
            headers: &headers,
        },
    )
    .map_err(|_| ProviderError::Other("the storage account key is not base64".to_string()))?;
    artifact.rewind();
    let mut request = template.body(Body::Artifact(artifact));
    for (k, v) in headers.iter().skip(1) {
        request = request.header(k, v);
    }
    let response = request
        .header("authorization", &authorization)
        .send()
        .map_err(ProviderError::from)?;
    if response.is_success() {
        Ok(())
    } else {
        Err(errors::from_response(&response))
    }
}
