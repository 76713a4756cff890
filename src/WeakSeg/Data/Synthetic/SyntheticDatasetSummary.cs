namespace WeakSeg.Data.Synthetic;

/// <summary>Per-class figures of a generated synthetic dataset.</summary>
/// <param name="Index">class index 1..K</param>
/// <param name="Name">class name</param>
/// <param name="TrainImages">train images whose mask contains the class</param>
/// <param name="ValImages">val images whose mask contains the class</param>
/// <param name="PixelShare">share of all labelled foreground pixels (train + val) that belong to the class</param>
/// <param name="OnTrapBackground">images (train + val) with the class on the trap (water) background</param>
public sealed record SyntheticClassStats(int Index, string Name, int TrainImages, int ValImages, double PixelShare, int OnTrapBackground);

/// <summary>What <see cref="SyntheticDataset.Generate"/> wrote.</summary>
public sealed record SyntheticDatasetSummary
{
    public required string Root { get; init; }
    /// <summary>"background" followed by the K class names.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }
    public required int TrainImages { get; init; }
    public required int ValImages { get; init; }
    public required IReadOnlyList<SyntheticClassStats> Classes { get; init; }
    /// <summary>Images per background family (train + val), keyed by scene name.</summary>
    public required IReadOnlyDictionary<string, int> Scenes { get; init; }
    public required double MeanObjectsPerImage { get; init; }
    public required double MeanClassesPerImage { get; init; }
    /// <summary>Fraction of mask pixels that are 255 (the ignore band).</summary>
    public required double IgnoreFraction { get; init; }

    /// <summary>The co-occurrence trap class name ("boat"), or null when K is too small to contain it.</summary>
    public required string? TrapClass { get; init; }
    /// <summary>The trap background ("water", labelled background).</summary>
    public required string TrapScene { get; init; }
    /// <summary>Images (train + val) containing the trap class.</summary>
    public required int TrapClassImages { get; init; }
    /// <summary>… of which on the trap background.</summary>
    public required int TrapClassImagesOnTrapScene { get; init; }
    /// <summary>Images (train + val) with the trap background.</summary>
    public required int TrapSceneImages { get; init; }
    /// <summary>… of which containing the trap class.</summary>
    public required int TrapSceneImagesWithTrapClass { get; init; }
    public required TimeSpan Elapsed { get; init; }

    /// <summary>P(trap background | trap class), NaN when the class never occurs.</summary>
    public double TrapSceneGivenClass => TrapClassImages == 0 ? double.NaN : (double)TrapClassImagesOnTrapScene / TrapClassImages;
    /// <summary>P(trap class | trap background), NaN when the background never occurs.</summary>
    public double TrapClassGivenScene => TrapSceneImages == 0 ? double.NaN : (double)TrapSceneImagesWithTrapClass / TrapSceneImages;
}
