//! The pure part of the NGSI-LD temporal API (ETSI GS CIM 009 V1.8.1 clauses 4.5.7–4.5.8
//! and 4.5.19, 5.6.11–5.6.19, 5.7.3–5.7.4, 6.18–6.24): the history of an entity as a
//! list of attribute instances, and what the broker needs to read it in and show it.
//!
//! - [`TemporalQuery`] reads the temporal query parameters (`timerel`, `timeAt`,
//!   `endTimeAt`, `timeproperty`, `lastN`, `aggrMethods`, `aggrPeriodDuration` and the
//!   `temporalValues`/`aggregatedValues` options) and selects instances with them.
//! - [`decode_temporal_entity`] and [`decode_temporal_attributes`] read the bodies of
//!   `POST /temporal/entities` and `POST /temporal/entities/{id}/attrs` into
//!   [`TemporalInstance`]s, each with a fresh `instanceId`.
//! - [`encode_temporal`] renders the history of one entity as the normalized, the
//!   simplified (`temporalValues`) or the aggregated temporal representation.
//! - [`instances_of_change`] turns an entity write into the instances it adds to the
//!   history; [`latest_attributes`] turns instances back into current attributes.
//! - [`aggregate`] computes the aggregation of one attribute's instances over
//!   consecutive periods.
//!
//! Storage keeps [`TemporalInstance`]s as they are; this module never does I/O.

mod aggregate;
mod change;
mod decode;
mod duration;
mod encode;
mod pagination;
mod query;
mod rollup;

pub use aggregate::{aggregate, AggregatedValue, AggregationWindow, Bucket};
pub use change::{deletion_record, instances_of_change, latest_attributes, recorded, NGSI_LD_NULL};
pub use decode::{decode_temporal_attributes, decode_temporal_entity, TemporalEntity};
pub use duration::{DurationError, IsoDuration};
pub use encode::{
    empty_series, encode_aggregated, encode_temporal, AggregatedSeries, TemporalRender,
};
pub use pagination::{paginate, ContentRange};
pub use query::{Aggregation, AggregationMethod, TemporalForm, TemporalQuery, TimeRel};
pub use rollup::{aggregate_rollups, hour_of, HourlyRollup};

use crate::model::Attribute;
use chrono::{DateTime, Utc};

/// One stored instance of an attribute in an entity's history.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalInstance {
    /// The expanded attribute name (IRI).
    pub name: String,
    /// `urn:ngsi-ld:AttributeInstance:<uuid>`, given by the broker when the instance
    /// is first stored and never changed.
    pub instance_id: String,
    /// The value with its `datasetId`, `observedAt`, `unitCode`, `createdAt`,
    /// `modifiedAt` and sub-attributes.
    pub attribute: Attribute,
    /// When the attribute (instance) was deleted; such an instance records the deletion
    /// and carries the NGSI-LD Null as its value.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl TemporalInstance {
    /// A new instance of `name` (expanded) with a fresh instance id.
    pub fn new(name: impl Into<String>, attribute: Attribute) -> TemporalInstance {
        TemporalInstance {
            name: name.into(),
            instance_id: new_instance_id(),
            attribute,
            deleted_at: None,
        }
    }

    /// The instance's time for `property`, if it has one.
    pub fn time(&self, property: TimeProperty) -> Option<DateTime<Utc>> {
        match property {
            TimeProperty::ObservedAt => self.attribute.observed_at,
            TimeProperty::CreatedAt => self.attribute.created_at,
            TimeProperty::ModifiedAt => self.attribute.modified_at,
            TimeProperty::DeletedAt => self.deleted_at,
        }
    }
}

/// The time property a temporal query is about (`timeproperty`, clause 4.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeProperty {
    #[default]
    ObservedAt,
    CreatedAt,
    ModifiedAt,
    DeletedAt,
}

impl TimeProperty {
    /// The parameter value and member name (`observedAt`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeProperty::ObservedAt => "observedAt",
            TimeProperty::CreatedAt => "createdAt",
            TimeProperty::ModifiedAt => "modifiedAt",
            TimeProperty::DeletedAt => "deletedAt",
        }
    }
}

/// A fresh `urn:ngsi-ld:AttributeInstance:<uuid v4>`.
pub fn new_instance_id() -> String {
    format!("urn:ngsi-ld:AttributeInstance:{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests_aggregate;
#[cfg(test)]
mod tests_change;
#[cfg(test)]
mod tests_codec;
#[cfg(test)]
mod tests_encode;
#[cfg(test)]
mod tests_pagination;
#[cfg(test)]
mod tests_query;
#[cfg(test)]
mod tests_rollup;
