//! Points, boxes and 2-D similarity transforms (rotation + uniform scale +
//! translation), with the least-squares Umeyama fit used for alignment.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

/// An axis-aligned box in pixels: top-left corner plus size.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PixelBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl PixelBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn intersection_over_union(&self, other: &PixelBox) -> f32 {
        let left = self.x.max(other.x);
        let top = self.y.max(other.y);
        let right = (self.x + self.width).min(other.x + other.width);
        let bottom = (self.y + self.height).min(other.y + other.height);
        let inter = (right - left).max(0.0) * (bottom - top).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The part of the box inside a `width` x `height` image.
    pub fn clipped(&self, width: u32, height: u32) -> PixelBox {
        let (w, h) = (width as f32, height as f32);
        let left = self.x.clamp(0.0, w);
        let top = self.y.clamp(0.0, h);
        let right = (self.x + self.width).clamp(0.0, w);
        let bottom = (self.y + self.height).clamp(0.0, h);
        PixelBox {
            x: left,
            y: top,
            width: right - left,
            height: bottom - top,
        }
    }

    /// The box as ratios of the image size, as Rekognition's BoundingBox.
    pub fn relative_to(&self, width: u32, height: u32) -> RelativeBox {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        RelativeBox {
            left: self.x / w,
            top: self.y / h,
            width: self.width / w,
            height: self.height / h,
        }
    }
}

/// A box as ratios of the image width and height (Rekognition's
/// `BoundingBox`: Left, Top, Width, Height in [0, 1]).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RelativeBox {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

/// `p' = [a -b; b a] p + [tx; ty]`: rotation and uniform scale in (a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    pub fn apply(&self, p: Point) -> Point {
        Point {
            x: self.a * p.x - self.b * p.y + self.tx,
            y: self.b * p.x + self.a * p.y + self.ty,
        }
    }

    /// The uniform scale factor.
    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// The inverse map, or `None` when the transform is degenerate.
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if !det.is_finite() || det < 1e-12 {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// `self` after `first`: `p -> self(first(p))`.
    pub fn compose(&self, first: &Similarity) -> Similarity {
        Similarity {
            a: self.a * first.a - self.b * first.b,
            b: self.b * first.a + self.a * first.b,
            tx: self.a * first.tx - self.b * first.ty + self.tx,
            ty: self.b * first.tx + self.a * first.ty + self.ty,
        }
    }

    /// Rotation by `angle_rad` and scale `s` around `center`.
    pub fn around(center: Point, angle_rad: f32, s: f32) -> Similarity {
        let (a, b) = (s * angle_rad.cos(), s * angle_rad.sin());
        Similarity {
            a,
            b,
            tx: center.x - (a * center.x - b * center.y),
            ty: center.y - (b * center.x + a * center.y),
        }
    }

    /// Least-squares similarity mapping `from[i]` onto `to[i]` (Umeyama 1991,
    /// specialised to 2-D where the rotation is closed-form). `None` when the
    /// source points are degenerate (all equal) or the lengths differ.
    pub fn umeyama(from: &[Point], to: &[Point]) -> Option<Similarity> {
        if from.len() != to.len() || from.len() < 2 {
            return None;
        }
        let n = from.len() as f64;
        let mean = |ps: &[Point]| {
            let (sx, sy) = ps.iter().fold((0.0f64, 0.0f64), |(x, y), p| {
                (x + f64::from(p.x), y + f64::from(p.y))
            });
            (sx / n, sy / n)
        };
        let (fx, fy) = mean(from);
        let (tx, ty) = mean(to);
        // For 2-D the optimum is a = Σ(u·v)/Σ|u|², b = Σ(u×v)/Σ|u|² with
        // u, v the centred source and target points.
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in from.iter().zip(to) {
            let (ux, uy) = (f64::from(p.x) - fx, f64::from(p.y) - fy);
            let (vx, vy) = (f64::from(q.x) - tx, f64::from(q.y) - ty);
            dot += ux * vx + uy * vy;
            cross += ux * vy - uy * vx;
            norm += ux * ux + uy * uy;
        }
        if norm < 1e-12 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: (tx - (a * fx - b * fy)) as f32,
            ty: (ty - (b * fx + a * fy)) as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umeyama_recovers_an_exact_similarity() {
        let truth = Similarity::around(Point::new(10.0, 20.0), 0.3, 1.7).compose(&Similarity {
            a: 1.0,
            b: 0.0,
            tx: 5.0,
            ty: -3.0,
        });
        let from = [
            Point::new(0.0, 0.0),
            Point::new(40.0, 2.0),
            Point::new(20.0, 30.0),
            Point::new(5.0, 50.0),
            Point::new(35.0, 52.0),
        ];
        let to: Vec<Point> = from.iter().map(|p| truth.apply(*p)).collect();
        let fit = Similarity::umeyama(&from, &to).expect("fit");
        for (p, q) in from.iter().zip(&to) {
            let r = fit.apply(*p);
            assert!((r.x - q.x).abs() < 1e-3 && (r.y - q.y).abs() < 1e-3);
        }
        let back = fit.inverse().expect("invertible");
        let p = back.apply(fit.apply(Point::new(7.0, 9.0)));
        assert!((p.x - 7.0).abs() < 1e-3 && (p.y - 9.0).abs() < 1e-3);
    }

    #[test]
    fn umeyama_refuses_degenerate_points() {
        let same = [Point::new(1.0, 1.0); 5];
        assert!(Similarity::umeyama(&same, &same).is_none());
        assert!(Similarity::umeyama(&same[..2], &same[..3]).is_none());
    }

    #[test]
    fn iou_and_relative_boxes() {
        let a = PixelBox {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        let b = PixelBox {
            x: 5.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        assert!((a.intersection_over_union(&b) - 50.0 / 150.0).abs() < 1e-6);
        let r = b.relative_to(20, 40);
        assert_eq!((r.left, r.top, r.width, r.height), (0.25, 0.0, 0.5, 0.25));
        let c = PixelBox {
            x: -5.0,
            y: 35.0,
            width: 10.0,
            height: 10.0,
        }
        .clipped(20, 40);
        assert_eq!((c.x, c.y, c.width, c.height), (0.0, 35.0, 5.0, 5.0));
    }
}
