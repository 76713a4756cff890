namespace WeakSeg.Data.Synthetic;

/// <summary>
/// Settings of the built-in synthetic WSSS benchmark (<see cref="SyntheticDataset.Generate"/>). Defaults are WeakSeg's own
/// choices (no paper defines this set): 96 px images so a small ViT (patch 8 or 16) trains on 2 CPU cores in minutes;
/// 400 train / 100 val images so each of the 10 classes appears in about 55 train and 14 val images (≈1.4 classes per image).
/// </summary>
public sealed record SyntheticDatasetConfig
{
    /// <summary>Images in the train split (train.txt = train_aug.txt).</summary>
    public int TrainImages { get; init; } = 400;
    /// <summary>Images in the val split.</summary>
    public int ValImages { get; init; } = 100;
    /// <summary>Square image side in pixels.</summary>
    public int ImageSize { get; init; } = 96;
    /// <summary>K foreground classes, the first K of <see cref="SyntheticClassCatalog.All"/> (the trap class "boat" is class 2).</summary>
    public int NumClasses { get; init; } = 10;
    /// <summary>Dataset seed; image i of a split is generated from an RNG seeded by (seed, split, i) only.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>JPEG quality of JPEGImages (VOC's photos are typical web JPEGs; 90 keeps artefacts mild).</summary>
    public int JpegQuality { get; init; } = 90;
    /// <summary>Anti-aliasing: S×S samples per pixel for the image (masks use the pixel centre only, so they stay hard).</summary>
    public int Supersampling { get; init; } = 4;
    /// <summary>P(water background | image contains the trap class "boat").</summary>
    public double TrapBackgroundProbability { get; init; } = 0.9;
    /// <summary>P(water background | image does not contain "boat").</summary>
    public double TrapBackgroundElsewhereProbability { get; init; } = 0.03;
    /// <summary>Ignore (255) band: pixels within this Manhattan distance of a different object/background are 255 (1 → a 2-px band straddling each outline, like VOC's border).</summary>
    public int BorderRadius { get; init; } = 1;
    /// <summary>Worker threads (0 = all cores). Does not change any output byte.</summary>
    public int Threads { get; init; } = 0;

    /// <summary>Problems with the settings, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (TrainImages < 1 || TrainImages > 1_000_000) errors.Add($"TrainImages must be in 1..1000000 (got {TrainImages})");
        if (ValImages < 1 || ValImages > 1_000_000) errors.Add($"ValImages must be in 1..1000000 (got {ValImages})");
        if (ImageSize < 32 || ImageSize > 1024) errors.Add($"ImageSize must be in 32..1024 (got {ImageSize})");
        if (NumClasses < 1 || NumClasses > SyntheticClassCatalog.MaxClasses) errors.Add($"NumClasses must be in 1..{SyntheticClassCatalog.MaxClasses} (got {NumClasses})");
        if (JpegQuality < 1 || JpegQuality > 100) errors.Add($"JpegQuality must be in 1..100 (got {JpegQuality})");
        if (Supersampling < 1 || Supersampling > 8) errors.Add($"Supersampling must be in 1..8 (got {Supersampling})");
        if (!(TrapBackgroundProbability >= 0 && TrapBackgroundProbability <= 1)) errors.Add($"TrapBackgroundProbability must be in [0, 1] (got {TrapBackgroundProbability})");
        if (!(TrapBackgroundElsewhereProbability >= 0 && TrapBackgroundElsewhereProbability <= 1)) errors.Add($"TrapBackgroundElsewhereProbability must be in [0, 1] (got {TrapBackgroundElsewhereProbability})");
        if (BorderRadius < 0 || BorderRadius > 4) errors.Add($"BorderRadius must be in 0..4 (got {BorderRadius})");
        if (Threads < 0) errors.Add($"Threads must be ≥ 0 (got {Threads})");
        return errors;
    }
}

/// <summary>The two splits the generator writes.</summary>
public enum SyntheticSplit { Train = 1, Val = 2 }
