//! Node and port identifiers (`nodeid` and `nodeid#portname`).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// What is wrong with a malformed node or port ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdProblem {
    Empty,
    BadChar(char),
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdProblem::Empty => f.write_str("the node ID is empty"),
            IdProblem::BadChar(c) => write!(f, "it contains the forbidden character {c:?}"),
        }
    }
}

fn check_node(s: &str) -> std::result::Result<(), IdProblem> {
    if s.is_empty() {
        return Err(IdProblem::Empty);
    }
    if let Some(c) = s.chars().find(|c| matches!(c, '#' | ';' | '\r' | '\n')) {
        return Err(IdProblem::BadChar(c));
    }
    Ok(())
}

fn check_port_name(s: &str) -> std::result::Result<(), IdProblem> {
    if let Some(c) = s.chars().find(|c| matches!(c, '#' | '\r' | '\n')) {
        return Err(IdProblem::BadChar(c));
    }
    Ok(())
}

/// The ID of a node: a non-empty string without `#`, `;`, CR or LF.
///
/// aemp never interprets a node ID; it is a name, not an address.
/// Cloning is cheap (the string is shared).
///
/// ```
/// use aemp::NodeId;
/// let id: NodeId = "db-1".parse().unwrap();
/// assert_eq!(id.as_str(), "db-1");
/// assert!("a#b".parse::<NodeId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Parses a node ID.
    ///
    /// # Errors
    /// [`Error::BadId`] when the string is empty or holds `#`, `;`, CR or LF.
    pub fn new(s: impl AsRef<str>) -> Result<NodeId> {
        let s = s.as_ref();
        check_node(s).map_err(|p| Error::BadId { id: s.to_owned(), problem: p.to_string() })?;
        Ok(NodeId(Arc::from(s)))
    }

    /// A random node ID of the form `anon/<random>` (what the profile `anon/` asks for).
    pub fn anon() -> NodeId {
        NodeId(Arc::from(format!("anon/{}", crate::util::random_token(16)).as_str()))
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The port ID of a port on this node with the given name.
    ///
    /// # Errors
    /// [`Error::BadId`] when `name` holds `#`, CR or LF.
    pub fn port(&self, name: &str) -> Result<PortId> {
        check_port_name(name)
            .map_err(|p| Error::BadId { id: format!("{}#{name}", self.0), problem: p.to_string() })?;
        Ok(PortId::from_parts(self.as_str(), name))
    }

    /// The node port of this node (`nodeid#`), which answers the kernel requests.
    pub fn node_port(&self) -> PortId {
        PortId::from_parts(self.as_str(), "")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", &*self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = Error;
    fn from_str(s: &str) -> Result<NodeId> {
        NodeId::new(s)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NodeId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for NodeId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Reads an ID from a string without first copying it into a `String`.
struct IdVisitor<T>(fn(&str) -> Result<T>);

impl<T> serde::de::Visitor<'_> for IdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<T, E> {
        (self.0)(s).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<NodeId, D::Error> {
        d.deserialize_str(IdVisitor(|s| NodeId::new(s)))
    }
}

/// The ID of a port: `nodeid#portname`.
///
/// A port ID names one port for ever: aemp never gives the same name to two
/// ports. The node port of a node has the empty name. A bare node ID
/// (no `#`) also parses, as the node port of that node, as in the original.
///
/// ```
/// use aemp::PortId;
/// let p: PortId = "db-1#x1.7".parse().unwrap();
/// assert_eq!(p.node().as_str(), "db-1");
/// assert_eq!(p.name(), "x1.7");
/// assert_eq!(aemp::node_of(p.as_str()).unwrap().as_str(), "db-1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId {
    full: Arc<str>,
    sep: u32,
}

impl PortId {
    fn from_parts(node: &str, name: &str) -> PortId {
        let mut s = String::with_capacity(node.len() + 1 + name.len());
        s.push_str(node);
        s.push('#');
        s.push_str(name);
        PortId { full: Arc::from(s), sep: node.len() as u32 }
    }

    /// A port ID from a string known to be valid, with `#` at byte `sep`.
    pub(crate) fn from_trusted(s: String, sep: usize) -> PortId {
        debug_assert_eq!(s.as_bytes().get(sep), Some(&b'#'));
        PortId { full: Arc::from(s), sep: sep as u32 }
    }

    /// Like [`PortId::from_trusted`], from a borrowed string.
    pub(crate) fn from_trusted_str(s: &str, sep: usize) -> PortId {
        debug_assert_eq!(s.as_bytes().get(sep), Some(&b'#'));
        PortId { full: Arc::from(s), sep: sep as u32 }
    }

    /// Parses a port ID (`node#name`; a bare node ID means its node port).
    ///
    /// # Errors
    /// [`Error::BadId`] naming the problem: an empty node part, or a
    /// forbidden character.
    pub fn new(s: impl AsRef<str>) -> Result<PortId> {
        let s = s.as_ref();
        let bad = |p: IdProblem| Error::BadId { id: s.to_owned(), problem: p.to_string() };
        match s.find('#') {
            Some(i) => {
                check_node(&s[..i]).map_err(bad)?;
                check_port_name(&s[i + 1..]).map_err(bad)?;
                Ok(PortId { full: Arc::from(s), sep: i as u32 })
            }
            None => {
                check_node(s).map_err(bad)?;
                Ok(PortId::from_parts(s, ""))
            }
        }
    }

    /// The whole ID, `node#name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The node part as a string slice.
    pub fn node_str(&self) -> &str {
        &self.full[..self.sep as usize]
    }

    /// The node this port lives on (AnyEvent::MP's `NODE $port`).
    pub fn node(&self) -> NodeId {
        NodeId(Arc::from(self.node_str()))
    }

    /// The port name, the part after `#` (empty for a node port).
    pub fn name(&self) -> &str {
        &self.full[self.sep as usize + 1..]
    }

    /// Whether this is the node port of its node.
    pub fn is_node_port(&self) -> bool {
        self.name().is_empty()
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortId({:?})", &*self.full)
    }
}

impl std::str::FromStr for PortId {
    type Err = Error;
    fn from_str(s: &str) -> Result<PortId> {
        PortId::new(s)
    }
}

impl AsRef<str> for PortId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl TryFrom<&str> for PortId {
    type Error = Error;
    fn try_from(s: &str) -> Result<PortId> {
        PortId::new(s)
    }
}

impl TryFrom<String> for PortId {
    type Error = Error;
    fn try_from(s: String) -> Result<PortId> {
        PortId::new(s)
    }
}

impl Serialize for PortId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for PortId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<PortId, D::Error> {
        d.deserialize_str(IdVisitor(|s| PortId::new(s)))
    }
}

/// The node ID of a port ID or of a node ID (AnyEvent::MP's `node_of`).
///
/// # Errors
/// [`Error::BadId`] when the node part is empty or malformed.
///
/// ```
/// assert_eq!(aemp::node_of("n1#p.3").unwrap().as_str(), "n1");
/// assert_eq!(aemp::node_of("n1").unwrap().as_str(), "n1");
/// ```
pub fn node_of(id: &str) -> Result<NodeId> {
    let node = id.split_once('#').map_or(id, |(n, _)| n);
    NodeId::new(node).map_err(|_| Error::BadId {
        id: id.to_owned(),
        problem: match check_node(node) {
            Err(p) => p.to_string(),
            Ok(()) => "malformed".into(),
        },
    })
}
