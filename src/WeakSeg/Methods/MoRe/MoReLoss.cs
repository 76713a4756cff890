using TorchSharp;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MoRe;

/// <summary>The uncertain patch tokens URE selected for one image.</summary>
/// <param name="Rows">(row, column) of each selected token on the patch grid, in the order used</param>
public sealed record UncertainTokenSelection(IReadOnlyList<(int Row, int Column)> Rows);

/// <summary>Which grid cell URE reads for a candidate window.</summary>
public enum UncertainTokenPosition
{
    /// <summary>
    /// Reference (MoRe URELoss_neg): candidates are found in the interior (margin 3) but their interior-relative indices are
    /// used as absolute ones, so the 6×6 test window is centred near the candidate while the token read is its top-left cell,
    /// 3 cells up-left of the detected position (the same shift for the extra confident tokens).
    /// </summary>
    Reference,

    /// <summary>The token at the detected position itself (interior index + margin).</summary>
    Detected,
}

/// <summary>MoRe's losses (model/losses.py), pure functions.</summary>
public static class MoReLoss
{
    const int Margin = 3;
    const int Window = 6;

    /// <summary>
    /// Class-token uniqueness (multi_cls_loss, only_regu = true as in training): the L2-normalised class tokens Q̂ [B, K, D]
    /// (eps 1e-12) give logits Q̂Q̂ᵀ / 0.07, scored with cross entropy against each token's own index, mean over B·K rows.
    /// With <paramref name="classLabels"/> and <paramref name="onlyRegularization"/> false: 0.5·MLSM(mean_D Q̂) + 0.5·that.
    /// </summary>
    public static Tensor ClassTokenUniqueness(Tensor classTokens, Tensor? classLabels = null, bool onlyRegularization = true)
    {
        if (classTokens.dim() != 3) throw new WeakSegException($"class tokens must be [B, K, D]; got [{string.Join(", ", classTokens.shape)}]");
        using var scope = torch.NewDisposeScope();
        long b = classTokens.shape[0], k = classTokens.shape[1];
        var normalized = nn.functional.normalize(classTokens, dim: -1);
        using var invTemperature = (1.0 / 0.07).ToScalar();
        var logits = torch.matmul(normalized, normalized.transpose(1, 2)).mul(invTemperature);    // [B, K, K]
        var target = torch.arange(k, dtype: ScalarType.Int64, device: classTokens.device).unsqueeze(0).expand(b, k);
        var regular = nn.functional.cross_entropy(logits.transpose(1, 2), target);             // class dim second
        if (onlyRegularization) return regular.MoveToOuterDisposeScope();
        if (classLabels is null) throw new WeakSegException("the classification part of the uniqueness loss needs image labels");
        var classification = nn.functional.multilabel_soft_margin_loss(normalized.mean(new long[] { -1 }), classLabels.to_type(normalized.dtype));
        using var half = 0.5.ToScalar();
        return StableScalars.Add(classification.mul(half), regular.mul(half)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Confident relation (CRE, CRELoss_neg): with q̂_c the L2-normalised class tokens (eps 1e-8) and p_j the raw patch tokens
    /// (detached, not normalised), ℓ_cj = exp(q̂_c·p_j / τ). For each present class c: Σ_{j: mask_j = c+1} −log(ℓ_cj / (Σ_j' ℓ_cj' + 1e-4))
    /// / (count + 1e-4); summed over classes, mean over images. classTokens [B, K, D], featureMap [B, D, h, w], mask [B, h, w]
    /// (labels 1..K, 0 background, 255 ignore), classLabels [B, K] → scalar.
    /// </summary>
    public static Tensor ConfidentRelation(Tensor classTokens, Tensor featureMap, Tensor mask, Tensor classLabels, double temperature = 0.5)
    {
        if (!(temperature > 0)) throw new WeakSegException($"CRE temperature must be > 0 (got {temperature})");
        long b = classTokens.shape[0], k = classTokens.shape[1];
        if (featureMap.dim() != 4 || featureMap.shape[0] != b || featureMap.shape[1] != classTokens.shape[2] || mask.dim() != 3
            || mask.shape[1] != featureMap.shape[2] || mask.shape[2] != featureMap.shape[3] || classLabels.shape[1] != k)
            throw new WeakSegException($"CRE needs class tokens [B, K, D], a feature map [B, D, h, w], a mask [B, h, w] and labels [B, K]; got [{string.Join(", ", classTokens.shape)}], [{string.Join(", ", featureMap.shape)}], [{string.Join(", ", mask.shape)}], [{string.Join(", ", classLabels.shape)}]");
        using var scope = torch.NewDisposeScope();
        var q = nn.functional.normalize(classTokens, p: 2, dim: 2, eps: 1e-8);
        var patches = featureMap.detach().reshape(b, featureMap.shape[1], -1);                  // [B, D, N]
        using var invTemperature = (1.0 / temperature).ToScalar();
        using var eps = 1e-4.ToScalar();
        var logits = torch.matmul(q, patches).mul(invTemperature).exp();                        // [B, K, N]
        var loss = logits.div(logits.sum(2, keepdim: true).add(eps)).log().neg();               // [B, K, N]
        var classIndex = torch.arange(1, k + 1, dtype: ScalarType.Int64, device: mask.device).reshape(1, k, 1);
        var flags = mask.reshape(b, 1, -1).to_type(ScalarType.Int64).eq(classIndex).to_type(loss.dtype);   // [B, K, N]
        var perClass = loss.mul(flags).sum(2).div(flags.sum(2).add(eps));                      // [B, K]
        using var presentLabel = 1.0.ToScalar();
        var present = classLabels.to_type(loss.dtype).eq(presentLabel).to_type(loss.dtype);
        return perClass.mul(present).sum(1).mean().MoveToOuterDisposeScope();
    }

    /// <summary>URE's region map: 255 → 1 (uncertain), classes ≥ 1 → 2 (confident foreground), 0 → 0. mask [B, h, w] → [B, h, w] int64.</summary>
    public static Tensor RegionMap(Tensor mask)
    {
        using var scope = torch.NewDisposeScope();
        var m = mask.to_type(ScalarType.Int64);
        var roi = torch.zeros_like(m);
        using var ignore = 255L.ToScalar();
        using var one = 1L.ToScalar();
        using var two = 2L.ToScalar();
        roi.masked_fill_(m.eq(ignore), one);
        roi.masked_fill_(m.ne(ignore).logical_and(m.ge(one)), two);
        return roi.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// URE token selection for one image (crop_from_roi_neg): candidates are interior cells (margin 3, row-major) with region 1
    /// whose 6×6 window has mean region ≥ 1.2. More than <paramref name="count"/> candidates: the first <paramref name="count"/>
    /// of a random permutation; otherwise (count − n)//4 extra interior cells of region 2 (any interior cell if too few) from a
    /// random permutation. <paramref name="permutation"/>(n) returns a permutation of 0..n−1 (called once per image, as the
    /// reference's torch.randperm). roi [h, w] int64.
    /// </summary>
    public static UncertainTokenSelection SelectUncertainTokens(Tensor roi, Func<int, IReadOnlyList<long>> permutation,
        int count = 8, UncertainTokenPosition position = UncertainTokenPosition.Reference)
    {
        int h = (int)roi.shape[0], w = (int)roi.shape[1];
        var values = roi.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        long At(int r, int c) => values[r * w + c];
        int offset = position == UncertainTokenPosition.Reference ? 0 : Margin;
        var candidates = new List<(int, int)>();
        for (int r = 0; r < h - 2 * Margin; r++)
            for (int c = 0; c < w - 2 * Margin; c++)
            {
                if (At(r + Margin, c + Margin) != 1) continue;
                long sum = 0;
                for (int y = r; y < Math.Min(h, r + Window); y++)
                    for (int x = c; x < Math.Min(w, c + Window); x++) sum += At(y, x);
                if (sum / (double)(Window * Window) >= 1.2) candidates.Add((r + offset, c + offset));
            }
        if (candidates.Count > count)
        {
            var order = permutation(candidates.Count);
            return new UncertainTokenSelection(order.Take(count).Select(i => candidates[(int)i]).ToList());
        }
        int extra = (count - candidates.Count) / 4;
        var confident = new List<(int, int)>();
        for (int r = 0; r < h - 2 * Margin; r++)
            for (int c = 0; c < w - 2 * Margin; c++)
                if (At(r + Margin, c + Margin) == 2) confident.Add((r + offset, c + offset));
        if (confident.Count < extra)
        {
            confident.Clear();
            for (int r = 0; r < h - 2 * Margin; r++)
                for (int c = 0; c < w - 2 * Margin; c++) confident.Add((r + offset, c + offset));
        }
        var picks = permutation(confident.Count);
        var selected = new List<(int, int)>(candidates);
        selected.AddRange(picks.Take(extra).Select(i => confident[(int)i]));
        return new UncertainTokenSelection(selected);
    }

    /// <summary>
    /// Uncertain relation (URE, URELoss_neg): patch tokens L2-normalised over channels (with gradient), class tokens
    /// L2-normalised and detached. For every selected token u of image i and a_c = |u·q̂_c|:
    /// 0.5·(1 − Σ_{c present} a_c / (n_present + 1)) + 0.5·Σ_{c absent} a_c / (n_absent + 1); mean over all selected tokens.
    /// classTokens [B, K, D], featureMap [B, D, h, w], mask [B, h, w], classLabels [B, K]. <paramref name="permutation"/>(image, n)
    /// supplies the random permutations. Returns the loss and the selections (0 when no token is selected).
    /// </summary>
    public static (Tensor Loss, IReadOnlyList<UncertainTokenSelection> Selections) UncertainRelation(Tensor classTokens, Tensor featureMap,
        Tensor mask, Tensor classLabels, Func<int, int, IReadOnlyList<long>> permutation, int count = 8,
        UncertainTokenPosition position = UncertainTokenPosition.Reference)
    {
        long b = classTokens.shape[0], k = classTokens.shape[1];
        if (featureMap.dim() != 4 || featureMap.shape[0] != b || mask.dim() != 3 || mask.shape[1] != featureMap.shape[2] || mask.shape[2] != featureMap.shape[3])
            throw new WeakSegException($"URE needs a feature map [B, D, h, w] and a mask [B, h, w] of the same grid; got [{string.Join(", ", featureMap.shape)}] and [{string.Join(", ", mask.shape)}]");
        if (mask.shape[1] <= 2 * Margin || mask.shape[2] <= 2 * Margin)
            throw new WeakSegException($"URE needs a patch grid larger than {2 * Margin}×{2 * Margin} (got {mask.shape[1]}×{mask.shape[2]})");
        using var scope = torch.NewDisposeScope();
        var patches = nn.functional.normalize(featureMap, p: 2, dim: 1, eps: 1e-8);            // [B, D, h, w]
        var q = nn.functional.normalize(classTokens, p: 2, dim: 2, eps: 1e-8).detach();        // [B, K, D]
        var roi = RegionMap(mask);
        var labels = classLabels.to_type(patches.dtype);
        using var one = 1.0.ToScalar();
        using var half = 0.5.ToScalar();
        using var zero = 0.0.ToScalar();
        var selections = new List<UncertainTokenSelection>();
        var terms = new List<Tensor>();
        for (int i = 0; i < b; i++)
        {
            int image = i;
            var selection = SelectUncertainTokens(roi[i], n => permutation(image, n), count, position);
            selections.Add(selection);
            if (selection.Rows.Count == 0) continue;
            var flat = selection.Rows.Select(rc => (long)(rc.Row * featureMap.shape[3] + rc.Column)).ToArray();
            var tokens = patches[i].reshape(featureMap.shape[1], -1).index_select(1, torch.tensor(flat, device: featureMap.device)).t();   // [n, D]
            var a = torch.matmul(tokens, q[i].t()).abs();                                       // [n, K]
            var present = labels[i];
            var absent = present.eq(zero).to_type(a.dtype);
            var positive = a.mul(present).sum(1).div(present.sum().add(one));
            var negative = a.mul(absent).sum(1).div(absent.sum().add(one));
            terms.Add(positive.neg().add(one).mul(half).add(negative.mul(half)));               // [n]
        }
        var loss = terms.Count == 0 ? featureMap.sum().mul(zero) : torch.cat(terms, 0).mean();
        return (loss.MoveToOuterDisposeScope(), selections);
    }

    /// <summary>The L2-normalised patch tokens URE uses for one image's selection: [n, D] (for inspection and tests).</summary>
    public static Tensor SelectedTokens(Tensor featureMap, int image, UncertainTokenSelection selection)
    {
        using var scope = torch.NewDisposeScope();
        var patches = nn.functional.normalize(featureMap, p: 2, dim: 1, eps: 1e-8)[image];
        var flat = selection.Rows.Select(rc => (long)(rc.Row * featureMap.shape[3] + rc.Column)).ToArray();
        return patches.reshape(featureMap.shape[1], -1).index_select(1, torch.tensor(flat, device: featureMap.device)).t().MoveToOuterDisposeScope();
    }
}
