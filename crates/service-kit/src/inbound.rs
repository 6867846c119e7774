//! What a service consumes: one channel, or several at once (a service subscribes to its
//! command channel, its replies and the events it keeps replicas from, in one consumer group).

use contracts::{Channel, DecodeError, Decoded};

/// The typed messages of the topics one consumer subscribes to. Every [`Channel`] is one; the
/// [`inbound!`](crate::inbound) macro makes an enum over several.
pub trait Inbound: Sized + Send + Clone {
    /// The topics to subscribe to.
    fn topics() -> Vec<&'static str>;
    /// The typed record of a decoded value; a record of another topic is refused.
    fn from_decoded(decoded: Decoded) -> Result<Self, DecodeError>;
}

impl<C: Channel + Send + Clone> Inbound for C {
    fn topics() -> Vec<&'static str> {
        vec![C::TOPIC]
    }

    fn from_decoded(decoded: Decoded) -> Result<Self, DecodeError> {
        <C as Channel>::from_decoded(decoded)
    }
}

/// An enum with a variant per channel a service consumes, implementing [`Inbound`]:
///
/// ```ignore
/// service_kit::inbound! {
///     /// What the order service consumes.
///     pub enum OrderInbound {
///         Commands(contracts::order::commands::Command),
///         Replies(contracts::order::replies::Reply),
///         Restaurants(contracts::restaurant::events::Event),
///     }
/// }
/// ```
#[macro_export]
macro_rules! inbound {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident($channel:ty)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis enum $name {
            $($variant($channel)),+
        }

        impl $crate::Inbound for $name {
            fn topics() -> Vec<&'static str> {
                vec![$(<$channel as ::contracts::Channel>::TOPIC),+]
            }

            fn from_decoded(
                decoded: ::contracts::Decoded,
            ) -> Result<Self, ::contracts::DecodeError> {
                $(
                    if decoded.topic == <$channel as ::contracts::Channel>::TOPIC {
                        return <$channel as ::contracts::Channel>::from_decoded(decoded)
                            .map(Self::$variant);
                    }
                )+
                Err(::contracts::DecodeError::RecordNotAllowed {
                    topic: decoded.topic,
                    record: decoded.full_name,
                })
            }
        }
    };
}
