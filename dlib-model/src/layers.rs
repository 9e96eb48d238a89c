//! dlib DNN layer details (`dlib/dnn/layers.h`, `input.h`, `loss.h`) as read
//! from their serialized form.

use crate::error::{Error, Result};
use crate::ser::{DlibTensor, Reader};

/// `con_`: a 2-D convolution (cross-correlation, like cuDNN's and dlib's CPU
/// path), weights `[num_filters, in_channels, nr, nc]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub num_filters: usize,
    pub in_channels: usize,
    pub nr: usize,
    pub nc: usize,
    pub stride_y: usize,
    pub stride_x: usize,
    pub padding_y: usize,
    pub padding_x: usize,
    /// Row-major `[num_filters, in_channels, nr, nc]`.
    pub weights: Vec<f32>,
    /// One per filter, absent when the layer was saved with its bias disabled.
    pub bias: Option<Vec<f32>>,
}

/// Whether an affine/batch-norm layer scales per channel or per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffineMode {
    /// dlib `CONV_MODE`: one gamma/beta per channel.
    Conv,
    /// dlib `FC_MODE`: one gamma/beta per element of a `[k, nr, nc]` sample.
    Fc,
}

/// `affine_` (also built from a serialized `bn_`, as dlib does):
/// `y = gamma * x + beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    pub mode: AffineMode,
    /// `[1, k, 1, 1]` in conv mode, `[1, k, nr, nc]` in fc mode.
    pub shape: [usize; 4],
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    /// A disabled affine (after dlib's `fuse_convolutions`) is the identity.
    pub disabled: bool,
}

/// `max_pool_` / `avg_pool_`. A window of 0 means the whole input plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub nr: usize,
    pub nc: usize,
    pub stride_y: usize,
    pub stride_x: usize,
    pub padding_y: usize,
    pub padding_x: usize,
}

impl Pool {
    /// `avg_pool_everything` / `max_pool_everything`.
    pub fn is_global(&self) -> bool {
        self.nr == 0 && self.nc == 0
    }
}

/// `fc_`: `y = x W (+ b)`, with `x` a sample flattened in `k, nr, nc` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Fc {
    pub num_inputs: usize,
    pub num_outputs: usize,
    /// Row-major `[num_inputs, num_outputs]`.
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// `input_rgb_image_sized<NR, NC>`: each channel is mapped to
/// `(value - avg) / 256`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputRgb {
    /// Red, green, blue means.
    pub avg: [f32; 3],
    pub nr: usize,
    pub nc: usize,
}

/// `loss_metric_`: at inference it outputs the subnetwork's output as is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossMetric {
    pub margin: f32,
    pub distance_threshold: f32,
}

/// One layer of a dlib network, in computation order.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    Conv(Conv),
    Affine(Affine),
    Relu,
    MaxPool(Pool),
    AvgPool(Pool),
    /// `add_prev<tagN>`: the sum of the previous output and the nearest
    /// `tagN` below, each zero-padded to the larger size on every axis.
    AddPrev {
        tag: u8,
    },
    /// `tagN`: names the current output.
    Tag {
        id: u8,
    },
    /// `skipN`: continues from the output of the nearest `tagN` below.
    Skip {
        tag: u8,
    },
    Fc(Fc),
}

impl Layer {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Layer::Conv(c) => format!(
                "con {} {}x{} stride {}x{} pad {}x{}",
                c.num_filters, c.nr, c.nc, c.stride_y, c.stride_x, c.padding_y, c.padding_x
            ),
            Layer::Affine(a) => format!("affine ({:?} mode)", a.mode),
            Layer::Relu => "relu".into(),
            Layer::MaxPool(p) => format!("max_pool {}x{} stride {}", p.nr, p.nc, p.stride_y),
            Layer::AvgPool(p) => format!("avg_pool {}x{} stride {}", p.nr, p.nc, p.stride_y),
            Layer::AddPrev { tag } => format!("add_prev{tag}"),
            Layer::Tag { id } => format!("tag{id}"),
            Layer::Skip { tag } => format!("skip{tag}"),
            Layer::Fc(f) => format!("fc {}", f.num_outputs),
        }
    }
}

fn split_params(
    r: &Reader<'_>,
    what: &str,
    params: DlibTensor,
    first: usize,
    second: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if params.data.len() != first + second {
        return Err(r.malformed(
            what,
            format!(
                "parameter tensor holds {} values, expected {first} + {second}",
                params.data.len()
            ),
        ));
    }
    let mut data = params.data;
    let tail = data.split_off(first);
    Ok((data, tail))
}

fn numel(shape: [usize; 4]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn to_usize(r: &Reader<'_>, what: &str, v: i32) -> Result<usize> {
    usize::try_from(v).map_err(|_| r.malformed(what, format!("negative value {v}")))
}

/// Skips the four `double` learning-rate / weight-decay multipliers.
fn skip_multipliers(r: &mut Reader<'_>, what: &str) -> Result<()> {
    for _ in 0..4 {
        r.read_f64(what)?;
    }
    Ok(())
}

/// `con_` versions `con_4` and `con_5`.
pub(crate) fn read_conv(r: &mut Reader<'_>) -> Result<Conv> {
    const W: &str = "con_";
    let version = r.read_version(W, &["con_4", "con_5"])?;
    let params = r.read_tensor("con_ params")?;
    let num_filters = r.read_len("con_ num_filters")?;
    let nr = r.read_len("con_ nr")?;
    let nc = r.read_len("con_ nc")?;
    let stride_y = r.read_i32("con_ stride_y")?;
    let stride_x = r.read_i32("con_ stride_x")?;
    let padding_y = r.read_i32("con_ padding_y")?;
    let padding_x = r.read_i32("con_ padding_x")?;
    let filters = r.read_alias_tensor("con_ filters")?;
    let biases = r.read_alias_tensor("con_ biases")?;
    skip_multipliers(r, "con_ multipliers")?;
    let use_bias = if version == "con_5" {
        r.read_bool("con_ use_bias")?
    } else {
        true
    };
    let (stride_y, stride_x) = (to_usize(r, W, stride_y)?, to_usize(r, W, stride_x)?);
    let (padding_y, padding_x) = (to_usize(r, W, padding_y)?, to_usize(r, W, padding_x)?);
    if stride_y == 0 || stride_x == 0 {
        return Err(r.malformed(W, "stride 0"));
    }
    if filters[0] != num_filters || filters[2] != nr || filters[3] != nc {
        return Err(r.malformed(
            W,
            format!("filters {filters:?} disagree with {num_filters} filters of {nr}x{nc}"),
        ));
    }
    let filter_size = numel(filters).ok_or_else(|| r.malformed(W, "filter shape overflows"))?;
    let bias_size = if use_bias {
        numel(biases).unwrap_or(0)
    } else {
        0
    };
    if use_bias && bias_size != num_filters {
        return Err(r.malformed(
            W,
            format!("bias shape {biases:?} for {num_filters} filters"),
        ));
    }
    let (weights, bias) = split_params(r, W, params, filter_size, bias_size)?;
    Ok(Conv {
        num_filters,
        in_channels: filters[1],
        nr,
        nc,
        stride_y,
        stride_x,
        padding_y,
        padding_x,
        weights,
        bias: use_bias.then_some(bias),
    })
}

fn read_mode(r: &mut Reader<'_>, what: &str) -> Result<AffineMode> {
    match r.read_i32(what)? {
        0 => Ok(AffineMode::Conv),
        1 => Ok(AffineMode::Fc),
        m => Err(r.malformed(what, format!("layer mode {m}, expected 0 or 1"))),
    }
}

/// `affine_` versions `affine_` and `affine_2`, or a `bn_con2` / `bn_fc2`
/// converted to an affine as dlib's `affine_(const bn_&)` does:
/// `gamma' = gamma / sqrt(running_variance + eps)`,
/// `beta' = beta - gamma' * running_mean`.
pub(crate) fn read_affine(r: &mut Reader<'_>) -> Result<Affine> {
    const W: &str = "affine_";
    let version = r.read_version(W, &["affine_", "affine_2", "bn_con2", "bn_fc2"])?;
    let params = r.read_tensor("affine_ params")?;
    let gamma_shape = r.read_alias_tensor("affine_ gamma")?;
    let beta_shape = r.read_alias_tensor("affine_ beta")?;
    if gamma_shape != beta_shape {
        return Err(r.malformed(W, format!("gamma {gamma_shape:?} != beta {beta_shape:?}")));
    }
    let size = numel(gamma_shape).ok_or_else(|| r.malformed(W, "gamma shape overflows"))?;
    if version.starts_with("bn_") {
        let mode = if version == "bn_con2" {
            AffineMode::Conv
        } else {
            AffineMode::Fc
        };
        for what in ["bn_ means", "bn_ invstds"] {
            r.read_tensor(what)?;
        }
        let running_means = r.read_tensor("bn_ running_means")?;
        let running_variances = r.read_tensor("bn_ running_variances")?;
        r.read_u64("bn_ num_updates")?;
        r.read_u64("bn_ running_stats_window_size")?;
        skip_multipliers(r, "bn_ multipliers")?;
        let eps = r.read_f64("bn_ eps")?;
        if running_means.data.len() != size || running_variances.data.len() != size {
            return Err(r.malformed(W, "running statistics do not match gamma"));
        }
        let (gamma, beta) = split_params(r, W, params, size, size)?;
        let scale: Vec<f64> = gamma
            .iter()
            .zip(&running_variances.data)
            .map(|(&g, &v)| f64::from(g) / (f64::from(v) + eps).sqrt())
            .collect();
        let beta = beta
            .iter()
            .zip(&scale)
            .zip(&running_means.data)
            .map(|((&b, &s), &m)| (f64::from(b) - s * f64::from(m)) as f32)
            .collect();
        return Ok(Affine {
            mode,
            shape: gamma_shape,
            gamma: scale.into_iter().map(|s| s as f32).collect(),
            beta,
            disabled: false,
        });
    }
    let mode = read_mode(r, "affine_ mode")?;
    let disabled = if version == "affine_2" {
        r.read_bool("affine_ is_disabled")?
    } else {
        false
    };
    let (gamma, beta) = if disabled {
        (Vec::new(), Vec::new())
    } else {
        split_params(r, W, params, size, size)?
    };
    Ok(Affine {
        mode,
        shape: gamma_shape,
        gamma,
        beta,
        disabled,
    })
}

pub(crate) fn read_relu(r: &mut Reader<'_>) -> Result<()> {
    r.read_version("relu_", &["relu_"]).map(|_| ())
}

/// `max_pool_2` or `avg_pool_2` (`tag` is the full version string).
pub(crate) fn read_pool(r: &mut Reader<'_>, tag: &str) -> Result<Pool> {
    r.read_version(tag, &[tag])?;
    let nr = r.read_len("pool nr")?;
    let nc = r.read_len("pool nc")?;
    let stride_y = r.read_i32("pool stride_y")?;
    let stride_x = r.read_i32("pool stride_x")?;
    let padding_y = r.read_i32("pool padding_y")?;
    let padding_x = r.read_i32("pool padding_x")?;
    let pool = Pool {
        nr,
        nc,
        stride_y: to_usize(r, tag, stride_y)?,
        stride_x: to_usize(r, tag, stride_x)?,
        padding_y: to_usize(r, tag, padding_y)?,
        padding_x: to_usize(r, tag, padding_x)?,
    };
    if pool.stride_y == 0 || pool.stride_x == 0 {
        return Err(r.malformed(tag, "stride 0"));
    }
    Ok(pool)
}

pub(crate) fn read_add_prev(r: &mut Reader<'_>) -> Result<()> {
    r.read_version("add_prev_", &["add_prev_"]).map(|_| ())
}

/// `fc_` versions `fc_2` and `fc_3`; `expect_bias` is the template's
/// `fc_bias_mode` (`fc` vs `fc_no_bias`).
pub(crate) fn read_fc(r: &mut Reader<'_>, expect_bias: bool) -> Result<Fc> {
    const W: &str = "fc_";
    let version = r.read_version(W, &["fc_2", "fc_3"])?;
    let num_outputs = r.read_u64("fc_ num_outputs")?;
    let num_inputs = r.read_u64("fc_ num_inputs")?;
    let params = r.read_tensor("fc_ params")?;
    let weights_shape = r.read_alias_tensor("fc_ weights")?;
    let biases_shape = r.read_alias_tensor("fc_ biases")?;
    let bias_mode = r.read_i32("fc_ bias_mode")?;
    skip_multipliers(r, "fc_ multipliers")?;
    let use_bias = if version == "fc_3" {
        r.read_bool("fc_ use_bias")?
    } else {
        true
    };
    let has_bias = match bias_mode {
        0 => true,
        1 => false,
        m => return Err(r.malformed(W, format!("bias mode {m}, expected 0 or 1"))),
    };
    if has_bias != expect_bias {
        return Err(r.malformed(
            W,
            format!("bias mode {bias_mode} does not match the network definition"),
        ));
    }
    let (num_inputs, num_outputs) =
        match (usize::try_from(num_inputs), usize::try_from(num_outputs)) {
            (Ok(i), Ok(o)) => (i, o),
            _ => return Err(r.malformed(W, "sizes too large")),
        };
    if numel(weights_shape) != num_inputs.checked_mul(num_outputs) || weights_shape[0] != num_inputs
    {
        return Err(r.malformed(
            W,
            format!("weights {weights_shape:?} for {num_inputs} inputs and {num_outputs} outputs"),
        ));
    }
    let bias_size = if has_bias && use_bias {
        numel(biases_shape).unwrap_or(0)
    } else {
        0
    };
    if has_bias && use_bias && bias_size != num_outputs {
        return Err(r.malformed(W, format!("bias shape {biases_shape:?}")));
    }
    let (weights, bias) = split_params(r, W, params, num_inputs * num_outputs, bias_size)?;
    Ok(Fc {
        num_inputs,
        num_outputs,
        weights,
        bias: (bias_size > 0).then_some(bias),
    })
}

/// `input_rgb_image_sized`.
pub(crate) fn read_input_rgb_sized(r: &mut Reader<'_>) -> Result<InputRgb> {
    const W: &str = "input_rgb_image_sized";
    r.read_version(W, &[W])?;
    let avg = [
        r.read_f32("avg_red")?,
        r.read_f32("avg_green")?,
        r.read_f32("avg_blue")?,
    ];
    let nr = r.read_u64("input nr")?;
    let nc = r.read_u64("input nc")?;
    match (usize::try_from(nr), usize::try_from(nc)) {
        (Ok(nr), Ok(nc)) if nr > 0 && nc > 0 => Ok(InputRgb { avg, nr, nc }),
        _ => Err(Error::Network(format!("input image size {nr}x{nc}"))),
    }
}

/// `loss_metric_` (fixed margin 0.1 and threshold 0.75) or `loss_metric_2`.
pub(crate) fn read_loss_metric(r: &mut Reader<'_>) -> Result<LossMetric> {
    let version = r.read_version("loss_metric_", &["loss_metric_", "loss_metric_2"])?;
    if version == "loss_metric_" {
        return Ok(LossMetric {
            margin: 0.1,
            distance_threshold: 0.75,
        });
    }
    Ok(LossMetric {
        margin: r.read_f32("loss_metric_ margin")?,
        distance_threshold: r.read_f32("loss_metric_ dist_thresh")?,
    })
}
