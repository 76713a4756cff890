using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Affinity;

/// <summary>Settings of the random walk that propagates maps over the learned affinities.</summary>
public sealed record RandomWalkConfig
{
    /// <summary>Affinity power β sharpening the transition matrix (PSA and MCTformer infer_aff.py: --beta 8).</summary>
    public double Beta { get; init; } = 8;

    /// <summary>The walk runs 2^LogT steps (the transition matrix is squared LogT times). PSA infer_aff.py: --logt 8;
    /// MCTformer psa/infer_aff.py: 6.</summary>
    public int LogT { get; init; } = 8;

    /// <summary>Pairs within this radius on the feature grid get an affinity (PSA: 5).</summary>
    public int Radius { get; init; } = 5;

    /// <summary>Background plane before the walk: MCTformer uses a constant (bg_thr 0.39, tuned for its maps); PSA (1 − max)^α
    /// with α = 16. The default is the constant, set to the pseudo-label threshold.</summary>
    public Refinement.MapBackground Background { get; init; } = Refinement.MapBackground.Threshold;

    /// <summary>Constant background score (MCTformer psa/infer_aff.py --bg_thr 0.39).</summary>
    public float BackgroundThreshold { get; init; } = 0.39f;

    /// <summary>Background power α (PSA infer_aff.py --alpha 16).</summary>
    public float BackgroundAlpha { get; init; } = 16f;

    public void Validate()
    {
        if (!(Beta > 0 && double.IsFinite(Beta))) throw new WeakSegException($"random walk β must be a finite number > 0 (got {Beta})");
        if (LogT < 0 || LogT > 30) throw new WeakSegException($"random walk log₂ t must be in 0..30 (got {LogT})");
        if (Radius < 2) throw new WeakSegException($"random walk radius must be ≥ 2 (radius r links pixels closer than r; got {Radius})");
        if (!(BackgroundThreshold >= 0 && BackgroundThreshold <= 1)) throw new WeakSegException($"random walk background threshold must be in [0, 1] (got {BackgroundThreshold})");
        if (!(BackgroundAlpha > 0 && float.IsFinite(BackgroundAlpha))) throw new WeakSegException($"random walk background α must be > 0 (got {BackgroundAlpha})");
    }
}

/// <summary>
/// PSA's random walk (jiwoon-ahn/psa infer_aff.py): A = aff^β over the dense affinity matrix (pairs within the radius both ways,
/// 1 on the diagonal, 0 elsewhere), T = A normalised so each column sums to 1, T ← T·T LogT times, refined scores = v·T for
/// scores v [K, N]. For a symmetric A this is P^(2^LogT) applied to each score column with the row-normalised P = D⁻¹A.
/// </summary>
public static class RandomWalk
{
    /// <summary>Column-normalised A^β: T[i, j] = A[i, j]^β / Σ_k A[k, j]^β. [N, N] → [N, N].</summary>
    public static Tensor TransitionMatrix(Tensor affinity, double beta)
    {
        if (affinity.dim() != 2 || affinity.shape[0] != affinity.shape[1])
            throw new WeakSegException($"affinity matrix must be square [N, N]; got [{string.Join(", ", affinity.shape)}]");
        using var scope = torch.NewDisposeScope();
        var powered = affinity.pow(beta);
        return (powered / powered.sum(0, keepdim: true)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// v · T^(2^logT) for scores [K, N]. Uses LogT squarings of T (PSA) when that is cheaper (LogT·N³ ≤ 2^LogT·K·N²), else
    /// 2^LogT products v ← v·T; both give the same result up to rounding.
    /// </summary>
    public static Tensor Propagate(Tensor scores, Tensor transition, int logT)
    {
        if (scores.dim() != 2 || scores.shape[1] != transition.shape[0])
            throw new WeakSegException($"scores [{string.Join(", ", scores.shape)}] do not match the transition matrix [{string.Join(", ", transition.shape)}]");
        double n = transition.shape[0], k = scores.shape[0];
        return logT * n * n * n <= Math.Pow(2, logT) * k * n * n ? BySquaring(scores, transition, logT) : ByProducts(scores, transition, logT);
    }

    /// <summary>v · T^(2^logT) with T squared logT times (PSA's computation).</summary>
    public static Tensor BySquaring(Tensor scores, Tensor transition, int logT)
    {
        using var scope = torch.NewDisposeScope();
        var t = transition;
        for (int i = 0; i < logT; i++) t = t.matmul(t);
        return scores.matmul(t).MoveToOuterDisposeScope();
    }

    /// <summary>v · T^(2^logT) as 2^logT successive products.</summary>
    public static Tensor ByProducts(Tensor scores, Tensor transition, int logT)
    {
        using var scope = torch.NewDisposeScope();
        var v = scores;
        long steps = 1L << logT;
        for (long i = 0; i < steps; i++)
        {
            var next = v.matmul(transition);
            if (i > 0) v.Dispose();
            v = next;
        }
        return v.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Dense symmetric affinity matrix [N, N] from pair affinities [P] over (from, to) pairs: A[from, to] = A[to, from] = a,
    /// A[i, i] = 1 (PSA resnet38_aff.py to_dense), 0 for pairs outside the radius.
    /// </summary>
    public static Tensor DenseAffinity(Tensor pairAffinities, Tensor from, Tensor to, long n)
    {
        using var scope = torch.NewDisposeScope();
        var dense = torch.zeros(n * n, dtype: pairAffinities.dtype, device: pairAffinities.device);
        dense.index_put_(pairAffinities, from * n + to);
        dense.index_put_(pairAffinities, to * n + from);
        var diagonal = torch.arange(n, device: pairAffinities.device) * (n + 1);
        dense.index_put_(torch.ones(n, dtype: pairAffinities.dtype, device: pairAffinities.device), diagonal);
        return dense.reshape(n, n).MoveToOuterDisposeScope();
    }
}
