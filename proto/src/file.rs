//! ColonyFS metadata (`pkg/core/{file,snapshot}.go`): files with their revisions under labels,
//! and snapshots of a label. The bytes live in S3 as in ColonyOS; only metadata is here.

use crate::gotime::GoTime;
use crate::lenient::null_default as nd;
use serde::{Deserialize, Serialize};

/// Where an S3 object is and how to read it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct S3Object {
    #[serde(default, deserialize_with = "nd")]
    pub server: String,
    #[serde(default, deserialize_with = "nd")]
    pub port: i64,
    #[serde(default, deserialize_with = "nd")]
    pub tls: bool,
    #[serde(default, deserialize_with = "nd")]
    pub accesskey: String,
    #[serde(default, deserialize_with = "nd")]
    pub secretkey: String,
    #[serde(default, deserialize_with = "nd")]
    pub region: String,
    #[serde(default, deserialize_with = "nd")]
    pub encryptionkey: String,
    #[serde(default, deserialize_with = "nd")]
    pub encryptionalg: String,
    #[serde(default, deserialize_with = "nd")]
    pub object: String,
    #[serde(default, deserialize_with = "nd")]
    pub bucket: String,
}

/// Where a file's bytes are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(default, deserialize_with = "nd")]
    pub protocol: String,
    #[serde(default, deserialize_with = "nd")]
    pub s3object: S3Object,
}

/// One revision of a named file under a label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct File {
    #[serde(default, deserialize_with = "nd")]
    pub fileid: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub size: i64,
    #[serde(default, deserialize_with = "nd")]
    pub sequencenr: i64,
    #[serde(default, deserialize_with = "nd")]
    pub checksum: String,
    #[serde(default, deserialize_with = "nd")]
    pub checksumalg: String,
    #[serde(default, deserialize_with = "nd", rename = "ref")]
    pub reference: Reference,
    #[serde(default)]
    pub added: GoTime,
}

/// The newest revision of a file of a label as `getfilesmsg` lists it (`pkg/core/filedata.go`):
/// `s3filename` is the object its bytes are in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileData {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub checksum: String,
    #[serde(default, deserialize_with = "nd")]
    pub size: i64,
    #[serde(default, deserialize_with = "nd")]
    pub s3filename: String,
}

impl From<&File> for FileData {
    fn from(file: &File) -> FileData {
        FileData {
            name: file.name.clone(),
            checksum: file.checksum.clone(),
            size: file.size,
            s3filename: file.reference.s3object.object.clone(),
        }
    }
}

/// A label and how many file names it holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub files: i64,
}

/// The file revisions of a label at one moment, by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, deserialize_with = "nd")]
    pub snapshotid: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub fileids: Vec<String>,
    #[serde(default)]
    pub added: GoTime,
}

/// A label as ColonyFS writes it: one leading `/`, no trailing `/` (`data/in/` -> `/data/in`).
pub fn normalize_label(label: &str) -> String {
    format!("/{}", label.trim_matches('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_get_one_leading_slash() {
        for (raw, normal) in [("data", "/data"), ("/data/in/", "/data/in"), ("", "/")] {
            assert_eq!(super::normalize_label(raw), normal);
        }
    }
}
