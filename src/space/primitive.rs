//! The candidate operations of the DARTS space and their names, which the
//! genotype (`crate::genotype`) and the supernet (`darts.rs`) share.

/// A candidate operation of the DARTS space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    None,
    MaxPool3x3,
    AvgPool3x3,
    SkipConnect,
    SepConv3x3,
    SepConv5x5,
    DilConv3x3,
    DilConv5x5,
}

impl Primitive {
    /// Every primitive in index order (the columns of α).
    pub const ALL: [Primitive; 8] = [
        Primitive::None,
        Primitive::MaxPool3x3,
        Primitive::AvgPool3x3,
        Primitive::SkipConnect,
        Primitive::SepConv3x3,
        Primitive::SepConv5x5,
        Primitive::DilConv3x3,
        Primitive::DilConv5x5,
    ];

    /// DARTS' name, as in genotypes.
    pub const fn name(self) -> &'static str {
        match self {
            Primitive::None => "none",
            Primitive::MaxPool3x3 => "max_pool_3x3",
            Primitive::AvgPool3x3 => "avg_pool_3x3",
            Primitive::SkipConnect => "skip_connect",
            Primitive::SepConv3x3 => "sep_conv_3x3",
            Primitive::SepConv5x5 => "sep_conv_5x5",
            Primitive::DilConv3x3 => "dil_conv_3x3",
            Primitive::DilConv5x5 => "dil_conv_5x5",
        }
    }

    /// The primitive called `name`, if any.
    pub fn from_name(name: &str) -> Option<Primitive> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether it is a pool (followed by a non-affine BN in the search network).
    pub fn is_pool(self) -> bool {
        matches!(self, Primitive::MaxPool3x3 | Primitive::AvgPool3x3)
    }
}

/// The primitives' names in index order.
pub const PRIMITIVES: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < 8 {
        names[i] = Primitive::ALL[i].name();
        i += 1;
    }
    names
};
