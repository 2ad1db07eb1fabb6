//! Typed messages: the [`Message`] trait that `#[derive(AempMessage)]`
//! implements, port IDs that know their message type, and typed send,
//! receive, spawn and call.
//!
//! On the wire nothing changes: a typed message is the same list of values,
//! a string tag first, that an untyped port or an AnyEvent::MP node sends
//! and receives.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::{Callback, Core, Handler, Key, PortEntry};
use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};
use crate::node::Node;
use crate::port::{local_key, CallbackResult, Ctx};
use crate::value::{Msg, Value};

/// A Rust type whose values are messages: a list of values with a string
/// tag first.
///
/// Derive it with [`AempMessage`](crate::AempMessage): an enum has one tag
/// per variant, a struct one tag. A hand-written implementation provides
/// [`TAGS`](Message::TAGS), [`tag`](Message::tag),
/// [`to_msg`](Message::to_msg) and [`from_fields`](Message::from_fields).
///
/// ```
/// use aemp::{msg, AempMessage, Message};
///
/// #[derive(AempMessage, Debug, PartialEq)]
/// struct Ping(u32);
///
/// assert_eq!(Ping(7).to_msg().unwrap(), msg!["ping", 7]);
/// assert_eq!(Ping::from_msg(&msg!["ping", 7]).unwrap(), Ping(7));
/// ```
pub trait Message: Sized + Send + 'static {
    /// Every tag this type can be sent with, in declaration order.
    const TAGS: &'static [&'static str];

    /// The tag this value is sent with.
    fn tag(&self) -> &'static str;

    /// Builds the message: the tag, then the fields.
    ///
    /// # Errors
    /// [`Error::Value`] naming the tag and the field when a field cannot be
    /// represented as a [`Value`] (a map with non-string keys, an integer
    /// beyond 64 bits, a failing `Serialize` implementation).
    fn to_msg(&self) -> Result<Msg>;

    /// Builds the message, consuming the value.
    ///
    /// # Errors
    /// As [`to_msg`](Message::to_msg).
    fn into_msg(self) -> Result<Msg> {
        self.to_msg()
    }

    /// Decodes a message whose tag `tag` has already been taken off:
    /// `fields` are the elements after it. This is what a tag callback
    /// receives, so decoding it costs no copy.
    ///
    /// # Errors
    /// [`Error::Value`] for an unknown tag, too few or too many elements, or
    /// a field of the wrong type; the text names the tag, the field (name or
    /// index, and its element index in the whole message) and what was
    /// found, e.g. `message "join": field "nick" (element 2): invalid type:
    /// expected a string, found integer 5`.
    fn from_fields(tag: &str, fields: &[Value]) -> Result<Self>;

    /// Decodes a whole message, tag first.
    ///
    /// # Errors
    /// [`Error::Value`] when the message is empty or its first element is
    /// not a string, and as [`from_fields`](Message::from_fields).
    fn from_msg(msg: &Msg) -> Result<Self> {
        let (tag, fields) = support::split_tag(msg)?;
        Self::from_fields(tag, fields)
    }
}

/// A [`PortId`] that remembers the type of the messages its port takes, so
/// that [`Node::snd_typed`] with another type does not compile.
///
/// It is the plain port ID on the wire and in serde (a string), so it can be
/// a field of a message: `Join { client: TypedPortId<ChatEvent>, .. }`. The
/// type is a promise made by whoever created it ([`Node::port_typed`],
/// [`Node::rcv_typed`], or [`TypedPortId::new_unchecked`]); a peer that
/// sends an ID of a port of another kind is caught when that port decodes
/// the messages (see [`Node::rcv_typed`]).
pub struct TypedPortId<M> {
    id: PortId,
    _message: PhantomData<fn() -> M>,
}

impl<M> TypedPortId<M> {
    /// Types a port ID without any check that the port takes `M`.
    pub fn new_unchecked(id: PortId) -> TypedPortId<M> {
        TypedPortId { id, _message: PhantomData }
    }

    /// The plain port ID.
    pub fn id(&self) -> &PortId {
        &self.id
    }

    /// Forgets the message type.
    pub fn untyped(self) -> PortId {
        self.id
    }
}

impl<M> Clone for TypedPortId<M> {
    fn clone(&self) -> Self {
        TypedPortId::new_unchecked(self.id.clone())
    }
}

impl<M> fmt::Debug for TypedPortId<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypedPortId<{}>({:?})", std::any::type_name::<M>(), self.id.as_str())
    }
}

impl<M> fmt::Display for TypedPortId<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.id, f)
    }
}

impl<M> PartialEq for TypedPortId<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<M> Eq for TypedPortId<M> {}

impl<M> Hash for TypedPortId<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<M> AsRef<PortId> for TypedPortId<M> {
    fn as_ref(&self) -> &PortId {
        &self.id
    }
}

impl<M> From<TypedPortId<M>> for PortId {
    fn from(p: TypedPortId<M>) -> PortId {
        p.id
    }
}

impl<M> From<TypedPortId<M>> for Value {
    fn from(p: TypedPortId<M>) -> Value {
        Value::from(p.id)
    }
}

impl<M> From<&TypedPortId<M>> for Value {
    fn from(p: &TypedPortId<M>) -> Value {
        Value::from(&p.id)
    }
}

impl<M> Serialize for TypedPortId<M> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.id.serialize(s)
    }
}

impl<'de, M> Deserialize<'de> for TypedPortId<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        PortId::deserialize(d).map(TypedPortId::new_unchecked)
    }
}

/// One tag callback of a typed receiver: decodes the fields for `tag` and
/// calls the shared user callback. A decoding error is returned, so it
/// kills the port like any callback error.
fn tag_callback<M, F, R>(tag: &'static str, f: Arc<Mutex<F>>) -> Callback
where
    M: Message,
    F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
    R: CallbackResult,
{
    Box::new(move |ctx, msg| {
        let m = M::from_fields(tag, &msg)?;
        // The dispatcher never re-enters a port's callbacks, so the lock is
        // always free; refuse rather than deadlock if that ever changed.
        let mut f = f.try_lock().ok_or_else(|| Error::die("typed callback re-entered"))?;
        (f)(ctx, m).into_result()
    })
}

/// The tag callbacks of a typed receiver, one per tag of `M`, sharing `f`.
fn tag_callbacks<M, F, R>(f: F) -> Vec<(&'static str, Callback)>
where
    M: Message,
    F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
    R: CallbackResult,
{
    let f = Arc::new(Mutex::new(f));
    M::TAGS.iter().map(|&tag| (tag, tag_callback::<M, F, R>(tag, f.clone()))).collect()
}

fn install(core: &mut Core, key: &Key, callbacks: Vec<(&'static str, Callback)>) {
    for (tag, cb) in callbacks {
        core.set_tag(key, tag, Some(Handler::Cb(cb)));
    }
}

/// Encodes the arguments of a typed spawn.
fn spawn_args<A: Serialize + ?Sized>(args: &A) -> Result<Msg> {
    Msg::encode(args).map_err(|e| Error::Value(format!("spawn arguments: {e}")))
}

/// Wraps a typed init function: decodes the arguments, then calls it.
fn typed_init<A, F, R>(f: F) -> impl Fn(&mut Ctx<'_>, Msg) -> Result<()> + Send + Sync + 'static
where
    A: DeserializeOwned,
    F: Fn(&mut Ctx<'_>, A) -> R + Send + Sync + 'static,
    R: CallbackResult,
{
    move |ctx, args| {
        let a: A = args.decode().map_err(|e| Error::Die(format!("spawn arguments: {e}")))?;
        f(ctx, a).into_result()
    }
}

impl Node {
    /// Sends a typed message to a local or remote port: encodes it
    /// and calls [`snd`](Node::snd). Sending a type the port does not take
    /// does not compile.
    ///
    /// # Errors
    /// When the message cannot be encoded (see [`Message::to_msg`]); nothing
    /// is sent then.
    pub fn snd_typed<M: Message>(&self, port: &TypedPortId<M>, msg: &M) -> Result<()> {
        self.snd(port.id(), msg.to_msg()?);
        Ok(())
    }

    /// Creates a port that receives `M`: [`rcv_typed`](Node::rcv_typed) on a
    /// new port without a default callback, so a message with a tag `M`
    /// does not know kills it.
    pub fn port_typed<M, F, R>(&self, f: F) -> TypedPortId<M>
    where
        M: Message,
        F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
        R: CallbackResult,
    {
        let port = self.port();
        self.rcv_typed(&port, f)
    }

    /// Makes the local port `port` receive `M`: one callback `f` gets the
    /// decoded value for every tag in [`M::TAGS`](Message::TAGS). Returns
    /// the port's typed ID.
    ///
    /// # What arrives where
    /// - `f` is registered as the tag callback of each tag of `M`,
    ///   replacing callbacks those tags had; all of them are in place before
    ///   the next message to the port is handled. The port's default
    ///   callback and its other tag callbacks are untouched, so several
    ///   types with distinct tags, and untyped callbacks, can share a port.
    /// - A message whose tag `M` knows but whose fields do not decode (too
    ///   few, too many, a wrong type) is not given to `f`: it kills the port
    ///   with `("die", text)`, the text naming the tag, the field and what
    ///   was found, exactly as if a callback had returned that error.
    ///   A peer sending garbage can do no more harm than that.
    /// - A message with a tag `M` does not know (or no string tag) goes to
    ///   the port's default callback, like any message without a tag
    ///   callback; a port without one dies of it.
    /// - An error returned by `f`, or a panic, kills the port.
    ///
    /// A remote `port` is ignored with a warning, as for [`rcv`](Node::rcv).
    pub fn rcv_typed<M, F, R>(&self, port: &PortId, f: F) -> TypedPortId<M>
    where
        M: Message,
        F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(self.shared(), port) {
            let callbacks = tag_callbacks::<M, F, R>(f);
            self.shared().call(move |core| install(core, &key, callbacks));
        }
        TypedPortId::new_unchecked(port.clone())
    }

    /// Registers an init function whose spawn arguments decode as `A`
    /// (through serde, the argument list read as a sequence: a tuple type
    /// takes the elements in order). Arguments that do not decode kill the
    /// new port with `("die", "spawn arguments: ...")`. See
    /// [`register`](Node::register).
    pub fn register_typed<A, F, R>(&self, name: &str, f: F)
    where
        A: DeserializeOwned,
        F: Fn(&mut Ctx<'_>, A) -> R + Send + Sync + 'static,
        R: CallbackResult,
    {
        self.register(name, typed_init(f));
    }

    /// Spawns a port on `node` running the init function `init`
    /// with `args` serialised as the argument list (a tuple or a `Vec`
    /// gives one argument per element), and types its ID as taking `M`.
    ///
    /// # Errors
    /// [`Error::Value`] when `args` does not serialise as a sequence;
    /// nothing is spawned then.
    pub fn spawn_typed<M: Message, A: Serialize + ?Sized>(
        &self,
        node: &NodeId,
        init: &str,
        args: &A,
    ) -> Result<TypedPortId<M>> {
        let args = spawn_args(args)?;
        Ok(TypedPortId::new_unchecked(self.spawn(node, init, args)))
    }

    /// A typed request and reply: makes a fresh reply port, builds the
    /// request with `make` (which puts the reply port's ID in it), sends it,
    /// and decodes the first message to the reply port as `R`.
    ///
    /// ```
    /// use aemp::{AempMessage, Node, TypedPortId};
    /// # use std::time::Duration;
    /// #[derive(AempMessage)]
    /// enum Math { Add(i64, i64, TypedPortId<Sum>) }
    /// #[derive(AempMessage, Debug, PartialEq)]
    /// struct Sum(i64);
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
    /// let node = Node::builder().build().await?;
    /// let math = node.port_typed(|ctx, m: Math| match m {
    ///     Math::Add(a, b, reply) => ctx.snd_typed(&reply, &Sum(a + b)),
    /// });
    /// let sum = node.call_typed(&math, |reply| Math::Add(2, 3, reply), Duration::from_secs(5)).await?;
    /// assert_eq!(sum, Sum(5));
    /// # node.shutdown().await; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`call`](Node::call), plus [`Error::Value`] when the request
    /// cannot be encoded or the reply does not decode as `R`.
    pub async fn call_typed<M, R>(
        &self,
        port: &TypedPortId<M>,
        make: impl FnOnce(TypedPortId<R>) -> M,
        timeout: Duration,
    ) -> Result<R>
    where
        M: Message,
        R: Message,
    {
        let make = |reply: &PortId| make(TypedPortId::new_unchecked(reply.clone())).into_msg();
        let reply = self.request(port.id(), make, timeout).await?;
        R::from_msg(&reply)
    }
}

impl Ctx<'_> {
    /// Sends a typed message: see [`Node::snd_typed`].
    ///
    /// # Errors
    /// When the message cannot be encoded; nothing is sent then.
    pub fn snd_typed<M: Message>(&mut self, port: &TypedPortId<M>, msg: &M) -> Result<()> {
        let m = msg.to_msg()?;
        self.snd(port.id(), m);
        Ok(())
    }

    /// Creates a port that receives `M`, at once: see [`Node::port_typed`].
    pub fn port_typed<M, F, R>(&mut self, f: F) -> TypedPortId<M>
    where
        M: Message,
        F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
        R: CallbackResult,
    {
        let n = self.core.shared.next_port();
        let key = Key::Num(n);
        self.core.insert(key.clone(), PortEntry::new(Handler::Empty));
        install(self.core, &key, tag_callbacks::<M, F, R>(f));
        TypedPortId::new_unchecked(self.core.shared.num_port_id(n))
    }

    /// Makes a local port receive `M`, at once (the next message handled
    /// already sees it): see [`Node::rcv_typed`] for what happens to
    /// messages that do not decode.
    pub fn rcv_typed<M, F, R>(&mut self, port: &PortId, f: F) -> TypedPortId<M>
    where
        M: Message,
        F: FnMut(&mut Ctx<'_>, M) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(&self.core.shared, port) {
            install(self.core, &key, tag_callbacks::<M, F, R>(f));
        }
        TypedPortId::new_unchecked(port.clone())
    }

    /// This port's ID, typed as taking `M` (unchecked: the caller knows
    /// what it receives).
    pub fn self_typed<M: Message>(&self) -> TypedPortId<M> {
        TypedPortId::new_unchecked(self.self_id())
    }

    /// Spawns a port running `init` with typed arguments: see
    /// [`Node::spawn_typed`].
    ///
    /// # Errors
    /// [`Error::Value`] when `args` does not serialise as a sequence.
    pub fn spawn_typed<M: Message, A: Serialize + ?Sized>(
        &mut self,
        node: &NodeId,
        init: &str,
        args: &A,
    ) -> Result<TypedPortId<M>> {
        let args = spawn_args(args)?;
        Ok(TypedPortId::new_unchecked(self.spawn(node, init, args)))
    }
}

/// What code generated by `#[derive(AempMessage)]` calls; re-exported as
/// `aemp::__private`. Not a stable API.
pub mod support {
    use std::fmt;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use crate::error::{Error, Result};
    use crate::value::Value;

    /// A field of a message, for error texts.
    #[derive(Debug, Clone, Copy)]
    pub struct Field {
        name: Option<&'static str>,
        index: usize,
    }

    impl Field {
        /// Field `index` (counting from 0 after the tag), called `name`.
        pub const fn named(name: &'static str, index: usize) -> Field {
            Field { name: Some(name), index }
        }

        /// Field `index` of a tuple variant or struct.
        pub const fn unnamed(index: usize) -> Field {
            Field { name: None, index }
        }
    }

    /// `field "nick" (element 2)` or `field 0 (element 1)`.
    impl fmt::Display for Field {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.name {
                Some(n) => write!(f, "field {n:?} (element {})", self.index + 1),
                None => write!(f, "field {} (element {})", self.index, self.index + 1),
            }
        }
    }

    /// Encodes one field.
    ///
    /// # Errors
    /// [`Error::Value`] naming the tag and the field.
    #[inline]
    pub fn encode_field<T: Serialize + ?Sized>(tag: &str, field: &Field, v: &T) -> Result<Value> {
        crate::ser::to_value(v).map_err(|e| Error::Value(format!("message {tag:?}: {field}: {e}")))
    }

    /// Decodes one field.
    ///
    /// # Errors
    /// [`Error::Value`] naming the tag, the field and what was found.
    #[inline]
    pub fn decode_field<T: DeserializeOwned>(tag: &str, field: &Field, v: &Value) -> Result<T> {
        crate::de::from_value_ref(v).map_err(|e| Error::Value(format!("message {tag:?}: {field}: {e}")))
    }

    /// Checks that `fields` (the elements after the tag) has exactly one
    /// element per expected field.
    ///
    /// # Errors
    /// [`Error::Value`] naming the first missing field, or the counts when
    /// there are too many elements.
    #[inline]
    pub fn check_len(tag: &str, fields: &[Value], expected: &[Field]) -> Result<()> {
        let (found, want) = (fields.len() + 1, expected.len() + 1);
        match expected.get(fields.len()) {
            Some(missing) => Err(Error::Value(format!(
                "message {tag:?}: missing {missing}: expected {want} elements, found {found}"
            ))),
            None if found > want => Err(Error::Value(format!(
                "message {tag:?}: too many elements: expected {want}, found {found}"
            ))),
            None => Ok(()),
        }
    }

    /// The error for a tag that is not one of `known`.
    pub fn unknown_tag(tag: &str, known: &[&str]) -> Error {
        let list = known.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
        match known {
            [_] => Error::Value(format!("unknown message tag {tag:?}: expected {list}")),
            _ => Error::Value(format!("unknown message tag {tag:?}: expected one of {list}")),
        }
    }

    /// Splits a message into its string tag and the elements after it.
    ///
    /// # Errors
    /// [`Error::Value`] when the message is empty or does not start with a
    /// string.
    pub fn split_tag(msg: &[Value]) -> Result<(&str, &[Value])> {
        match msg.split_first() {
            Some((Value::Str(tag), rest)) => Ok((tag, rest)),
            Some((other, _)) => {
                let why = match crate::de::from_value_ref::<String>(other) {
                    Err(e) => e.to_string(),
                    Ok(_) => other.kind().to_owned(),
                };
                Err(Error::Value(format!("the first element must be the message tag: {why}")))
            }
            None => Err(Error::Value("empty message: expected a string tag first".into())),
        }
    }
}
