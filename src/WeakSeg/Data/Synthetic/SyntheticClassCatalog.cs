namespace WeakSeg.Data.Synthetic;

/// <summary>
/// One foreground class of the synthetic benchmark: an outline family, a texture family and a hue centre. Object colours
/// are drawn within ±<see cref="SyntheticClassCatalog.HueSpread"/>° of the centre, so neighbouring classes overlap in colour.
/// </summary>
/// <param name="Name">class name written to classes.txt</param>
/// <param name="Shape">outline family</param>
/// <param name="Texture">surface pattern family</param>
/// <param name="HueCentre">centre of the primary-colour hue range, degrees</param>
/// <param name="MaxRotationDegrees">rotation range ±this (180 = any orientation)</param>
/// <param name="SizeFactor">multiplier of the sampled object size (thin outlines are drawn larger so classes have comparable areas)</param>
public sealed record SyntheticClass(string Name, ShapeKind Shape, TextureKind Texture, double HueCentre, double MaxRotationDegrees, double SizeFactor = 1.0);

/// <summary>The fixed, ordered catalogue of synthetic classes; a dataset with K classes uses the first K.</summary>
public static class SyntheticClassCatalog
{
    /// <summary>Primary hues are drawn uniformly within ±this many degrees of the class hue centre.</summary>
    public const double HueSpread = 40;

    /// <summary>Class 2 ("boat") is the co-occurrence trap class: it is placed on the "water" background most of the time.</summary>
    public const int TrapClass = 2;

    public static IReadOnlyList<SyntheticClass> All { get; } =
    [
        new("disc", ShapeKind.Disc, TextureKind.ShadedSolid, 0, 180),
        new("boat", ShapeKind.Boat, TextureKind.Planks, 25, 12, 1.3),
        new("triangle", ShapeKind.Triangle, TextureKind.Stripes, 210, 180, 1.1),
        new("star", ShapeKind.Star, TextureKind.Speckled, 50, 180),
        new("cross", ShapeKind.Cross, TextureKind.Checker, 275, 180),
        new("blob", ShapeKind.Blob, TextureKind.Mottled, 115, 180),
        new("crescent", ShapeKind.Crescent, TextureKind.Gradient, 320, 180),
        new("ring", ShapeKind.Ring, TextureKind.Dots, 165, 180),
        new("hexagon", ShapeKind.Hexagon, TextureKind.Grid, 240, 180),
        new("heart", ShapeKind.Heart, TextureKind.Concentric, 345, 25),
        new("diamond", ShapeKind.Diamond, TextureKind.Zigzag, 85, 30),
        new("arrow", ShapeKind.Arrow, TextureKind.Sprinkles, 190, 180, 1.15),
    ];

    public static int MaxClasses => All.Count;

    /// <summary>"background" followed by the first <paramref name="numClasses"/> class names (classes.txt content).</summary>
    public static IReadOnlyList<string> ClassNames(int numClasses)
    {
        if (numClasses < 1 || numClasses > MaxClasses) throw new ArgumentOutOfRangeException(nameof(numClasses), $"classes must be in 1..{MaxClasses}");
        return ["background", .. All.Take(numClasses).Select(c => c.Name)];
    }
}
