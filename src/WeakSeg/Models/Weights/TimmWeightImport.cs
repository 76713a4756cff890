using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;

namespace WeakSeg.Models.Weights;

/// <summary>What to do with a checkpoint's <c>cls_token</c> and <c>pos_embed</c>.</summary>
public enum ClassTokenImport
{
    /// <summary>
    /// Load both when the checkpoint has as many class tokens as the model (position grid resized to the model's grid);
    /// otherwise keep the model's fresh init. For MCTformer (C = classes ≠ 1) this equals the reference, which skips both.
    /// </summary>
    LoadWhenCountMatches,

    /// <summary>Never load them (keep the fresh truncated-normal init).</summary>
    KeepFresh,
}

/// <summary>Options of <see cref="TimmWeightImport"/>.</summary>
public sealed record WeightImportOptions
{
    public ClassTokenImport ClassTokens { get; init; } = ClassTokenImport.LoadWhenCountMatches;

    /// <summary>Key prefixes whose tensors are skipped (not an error) when their shape differs — classifier heads (MCTformer reference).</summary>
    public IReadOnlyList<string> SkipOnShapeMismatchPrefixes { get; init; } = new[] { "head.", "head_dist." };

    /// <summary>Prefixes stripped from checkpoint keys (DDP and wrapper prefixes).</summary>
    public IReadOnlyList<string> StripPrefixes { get; init; } = new[] { "module.", "model." };
}

/// <summary>A checkpoint key that was not loaded, and why.</summary>
public sealed record SkippedWeight(string Key, string Reason);

/// <summary>Outcome of a weight import, the one report of every importer (timm safetensors, TorchSharp backbone files, ONNX ResNets).</summary>
/// <param name="Loaded">Model keys whose values came from the checkpoint.</param>
/// <param name="Missing">Model keys the checkpoint does not provide (they keep their init).</param>
/// <param name="Skipped">Checkpoint keys present in the model but deliberately not loaded, with the reason.</param>
/// <param name="Unexpected">Checkpoint keys the model does not have.</param>
public sealed record WeightImportReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<SkippedWeight> Skipped, IReadOnlyList<string> Unexpected)
{
    /// <summary>The weights file, when the import read one.</summary>
    public string? Source { get; init; }

    public override string ToString() => (Source is null ? "" : Source + ": ") +
        $"loaded {Loaded.Count}, missing {Missing.Count}" + (Missing.Count > 0 ? $" ({string.Join(", ", Missing)})" : "") +
        $", skipped {Skipped.Count}" + (Skipped.Count > 0 ? $" ({string.Join(", ", Skipped.Select(s => s.Key))})" : "") +
        $", unexpected {Unexpected.Count}" + (Unexpected.Count > 0 ? $" ({string.Join(", ", Unexpected)})" : "");
}

/// <summary>Loads timm-format weights (timm key names) into a WeakSeg model.</summary>
public static class TimmWeightImport
{
    const string ClassTokenKey = "cls_token";
    const string PositionKey = "pos_embed";

    /// <summary>Reads a safetensors checkpoint and loads it (see <see cref="Load"/>). Errors name the file.</summary>
    public static WeightImportReport LoadFile(nn.Module model, string path, WeightImportOptions? options = null)
    {
        var file = SafetensorsFile.Read(path);
        var tensors = file.ToTorchDictionary();
        try { return Load(model, tensors, options) with { Source = path }; }
        catch (WeakSegException e) { throw WeakSegException.ForFile(path, e.Message); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Checkpoint keys with wrapper prefixes removed (pure; the returned dictionary shares the tensors).</summary>
    public static Dictionary<string, Tensor> StripKeyPrefixes(IReadOnlyDictionary<string, Tensor> checkpoint, IReadOnlyList<string> prefixes)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in checkpoint)
        {
            var k = key;
            bool stripped;
            do
            {
                stripped = false;
                foreach (var p in prefixes)
                    if (k.StartsWith(p, StringComparison.Ordinal)) { k = k[p.Length..]; stripped = true; }
            } while (stripped);
            if (!result.TryAdd(k, value)) throw new WeakSegException($"checkpoint key '{key}' collides with another key after removing prefixes");
        }
        return result;
    }

    /// <summary>
    /// Copies every checkpoint tensor whose key and shape match a model parameter or buffer. <c>cls_token</c>/<c>pos_embed</c> follow
    /// <see cref="WeightImportOptions.ClassTokens"/>; heads of another shape are skipped; any other shape mismatch is an error naming the key and both shapes.
    /// </summary>
    public static WeightImportReport Load(nn.Module model, IReadOnlyDictionary<string, Tensor> checkpoint, WeightImportOptions? options = null)
    {
        options ??= new WeightImportOptions();
        var source = StripKeyPrefixes(checkpoint, options.StripPrefixes);
        var target = model.state_dict();
        var vit = model as VisionTransformer;

        var loaded = new List<string>();
        var skipped = new List<SkippedWeight>();
        var plan = new List<(string Key, Tensor Value, bool Dispose)>();

        try
        {
            // Validate everything first, then copy, so a failing import leaves the model untouched.
            foreach (var (key, modelTensor) in target)
            {
                if (!source.TryGetValue(key, out var value)) continue;
                if (key is ClassTokenKey or PositionKey)
                {
                    var decision = PlanPrefixToken(key, value, modelTensor, source, vit, options.ClassTokens);
                    if (decision.Reason is not null) skipped.Add(new SkippedWeight(key, decision.Reason));
                    else plan.Add((key, decision.Value!, !ReferenceEquals(decision.Value, value)));
                    continue;
                }
                if (!value.shape.SequenceEqual(modelTensor.shape))
                {
                    if (options.SkipOnShapeMismatchPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
                    {
                        skipped.Add(new SkippedWeight(key, $"shape {Shape(value)} in the checkpoint, {Shape(modelTensor)} in the model"));
                        continue;
                    }
                    throw new WeakSegException($"checkpoint tensor '{key}' has shape {Shape(value)} but the model expects {Shape(modelTensor)}");
                }
                plan.Add((key, value, false));
            }

            using (torch.no_grad())
            {
                foreach (var (key, value, _) in plan)
                {
                    target[key].copy_(value);
                    loaded.Add(key);
                }
            }
        }
        finally
        {
            foreach (var (_, value, dispose) in plan) if (dispose) value.Dispose();
        }

        var missing = target.Keys.Where(k => !source.ContainsKey(k)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        return new WeightImportReport(loaded, missing, skipped, unexpected);
    }

    static (Tensor? Value, string? Reason) PlanPrefixToken(string key, Tensor value, Tensor modelTensor, IReadOnlyDictionary<string, Tensor> source,
        VisionTransformer? vit, ClassTokenImport policy)
    {
        if (policy == ClassTokenImport.KeepFresh) return (null, "class tokens and position embedding kept fresh (policy KeepFresh)");
        long modelCount = vit?.NumClassTokens ?? (key == ClassTokenKey ? modelTensor.shape[1] : -1);
        long checkpointCount = source.TryGetValue(ClassTokenKey, out var ckptCls) && ckptCls.dim() == 3 ? ckptCls.shape[1] : 0;
        if (modelCount >= 0 && checkpointCount != modelCount)
            return (null, $"checkpoint has {checkpointCount} class token(s), the model {modelCount}; kept fresh init");
        if (value.dim() != 3 || value.shape[2] != modelTensor.shape[2] || value.shape[0] != 1)
            throw new WeakSegException($"checkpoint tensor '{key}' has shape {Shape(value)} but the model expects {Shape(modelTensor)}");
        if (value.shape.SequenceEqual(modelTensor.shape)) return (value, null);
        if (key == ClassTokenKey || vit is null)
            throw new WeakSegException($"checkpoint tensor '{key}' has shape {Shape(value)} but the model expects {Shape(modelTensor)}");
        int grid = vit.Config.GridSize;
        using var asFloat = value.to_type(ScalarType.Float32);
        var resized = PositionEmbedding.Resize(asFloat, (int)checkpointCount, grid, grid, vit.Config.PositionEmbeddingResize);
        return (resized, null);
    }

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
