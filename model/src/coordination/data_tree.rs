//! The data tree: znodes by absolute path, the validation and application of one write, and
//! the path helpers (parents, children as one contiguous `BTreeMap` range).
//!
//! Mirrors ZooKeeper's `DataTree` and `PathUtils`.

use super::*;

/// Applies one write (or check) to `tree`, validating everything before changing anything,
/// so an error leaves `tree` as it was. Records what changed in `triggers`.
pub(super) fn apply_op(
    tree: &mut BTreeMap<String, Znode>,
    session: SessionId,
    op: ZkOp,
    triggers: &mut Vec<Trigger>,
) -> Result<ZkReply, ZkError> {
    match op {
        ZkOp::Check { path, version } => {
            let z = tree.get(&path).ok_or(ZkError::NoNode)?;
            if z.version != version {
                return Err(ZkError::BadVersion);
            }
            Ok(ZkReply::Stat { version })
        }
        ZkOp::Create {
            path,
            data,
            ephemeral,
        } => {
            if path == ROOT {
                return Err(ZkError::NodeExists);
            }
            if !is_valid_path(&path) {
                return Err(ZkError::NoNode);
            }
            let parent = parent_of(&path)
                .expect("only the root has no parent")
                .to_string();
            let parent_ephemeral = tree
                .get(&parent)
                .ok_or(ZkError::NoNode)?
                .ephemeral_owner
                .is_some();
            if tree.contains_key(&path) {
                return Err(ZkError::NodeExists);
            }
            if parent_ephemeral {
                // ZooKeeper: NoChildrenForEphemerals (see the module docs).
                return Err(ZkError::NoNode);
            }
            let znode = Znode {
                data,
                version: ZkVersion(0),
                ephemeral_owner: ephemeral.then_some(session),
                cversion: 0,
            };
            tree.insert(path.clone(), znode);
            bump_cversion(tree, &parent);
            triggers.push((path.clone(), WatchKind::NodeCreated));
            triggers.push((parent, WatchKind::NodeChildrenChanged));
            Ok(ZkReply::Created { path })
        }
        ZkOp::SetData {
            path,
            data,
            expected_version,
        } => {
            let z = tree.get_mut(&path).ok_or(ZkError::NoNode)?;
            if expected_version.is_some_and(|v| v != z.version) {
                return Err(ZkError::BadVersion);
            }
            z.data = data;
            z.version = ZkVersion(z.version.0.checked_add(1).expect("znode version overflow"));
            let version = z.version;
            triggers.push((path, WatchKind::NodeDataChanged));
            Ok(ZkReply::Stat { version })
        }
        ZkOp::Delete {
            path,
            expected_version,
        } => {
            if path == ROOT {
                // The root cannot go (see the module docs).
                return Err(ZkError::NotEmpty);
            }
            let z = tree.get(&path).ok_or(ZkError::NoNode)?;
            if expected_version.is_some_and(|v| v != z.version) {
                return Err(ZkError::BadVersion);
            }
            if has_children(tree, &path) {
                return Err(ZkError::NotEmpty);
            }
            tree.remove(&path);
            let parent = parent_of(&path)
                .expect("only the root has no parent")
                .to_string();
            bump_cversion(tree, &parent);
            triggers.push((path, WatchKind::NodeDeleted));
            triggers.push((parent, WatchKind::NodeChildrenChanged));
            Ok(ZkReply::Deleted)
        }
    }
}

pub(super) fn bump_cversion(tree: &mut BTreeMap<String, Znode>, path: &str) {
    let z = tree
        .get_mut(path)
        .expect("the parent of a changed znode exists");
    z.cversion = z.cversion.checked_add(1).expect("cversion overflow");
}

/// Absolute, no trailing `/` (except the root), no empty, `.` or `..` components.
pub(super) fn is_valid_path(path: &str) -> bool {
    if path == ROOT {
        return true;
    }
    match path.strip_prefix('/') {
        Some(rest) => rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".."),
        None => false,
    }
}

/// The parent of a valid path; `None` for the root.
pub(super) fn parent_of(path: &str) -> Option<&str> {
    if path == ROOT {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { ROOT } else { &path[..i] })
}

/// The prefix every descendant of `path` starts with.
pub(super) fn child_prefix(path: &str) -> String {
    if path == ROOT {
        ROOT.to_string()
    } else {
        format!("{path}/")
    }
}

/// Sorted child names of `path`. Descendants are exactly the keys that start with
/// `child_prefix(path)`, which in a `BTreeMap` form one contiguous range.
pub(super) fn child_names(tree: &BTreeMap<String, Znode>, path: &str) -> Vec<String> {
    let prefix = child_prefix(path);
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| {
            let rest = &k[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect()
}

pub(super) fn has_children(tree: &BTreeMap<String, Znode>, path: &str) -> bool {
    let prefix = child_prefix(path);
    tree.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .any(|(k, _)| k.len() > prefix.len())
}
