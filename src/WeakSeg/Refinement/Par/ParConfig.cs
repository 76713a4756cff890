namespace WeakSeg.Refinement.Par;

/// <summary>
/// Settings of pixel-adaptive refinement (PAR, ToCo model/PAR.py). Defaults are the values ToCo and MoRe train with:
/// dilations 1, 2, 4, 8, 12, 24 (48 neighbours), 10 iterations, w1 = 0.3, w2 = 0.01.
/// </summary>
public sealed record ParConfig
{
    /// <summary>Dilations of the 3×3 neighbour ring (8 neighbours each, centre excluded).</summary>
    public IReadOnlyList<int> Dilations { get; init; } = [1, 2, 4, 8, 12, 24];

    /// <summary>Propagation steps m ← Σ_j a_ij·m_j.</summary>
    public int Iterations { get; init; } = 10;

    /// <summary>Temperature of both kernels: κ = −(|Δ| / σ / w1)².</summary>
    public double W1 { get; init; } = 0.3;

    /// <summary>Weight of the position kernel added to the colour kernel after their softmaxes.</summary>
    public double W2 { get; init; } = 0.01;

    /// <summary>The default configuration (ToCo/MoRe training).</summary>
    public static ParConfig Default => new();

    /// <summary>Neighbours per pixel: 8 per dilation.</summary>
    public int NeighbourCount => 8 * Dilations.Count;

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Dilations.Count == 0) errors.Add("Dilations must list at least one dilation");
        foreach (var d in Dilations)
            if (d < 1) errors.Add($"Dilations must be ≥ 1 (got {d})");
        if (Iterations < 0) errors.Add($"Iterations must be ≥ 0 (got {Iterations})");
        if (!(W1 > 0) || double.IsInfinity(W1)) errors.Add($"W1 must be a positive number (got {W1})");
        if (!(W2 >= 0) || double.IsInfinity(W2)) errors.Add($"W2 must be a finite number ≥ 0 (got {W2})");
        return errors;
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem.</summary>
    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid PAR configuration: " + string.Join("; ", errors));
    }
}
