using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormerPlus;

/// <summary>
/// Starting MCTformer+ from a checkpoint with one joint <c>pos_embed</c> (DeiT: one class token, [1, 1 + 14·14, D]), as the official
/// main.py does: <c>cls_token</c> and the class row of <c>pos_embed</c> are repeated for the C class tokens (<c>cls_token</c>,
/// <c>pos_embed_cls</c>), and the patch rows become <c>pos_embed_pat</c> on the model's grid (<see cref="MctFormerPlusPositionInit"/>).
/// </summary>
public static class MctFormerPlusWeights
{
    const string ClassTokenKey = "cls_token", PositionKey = "pos_embed", ClassPositionKey = "pos_embed_cls", PatchPositionKey = "pos_embed_pat";

    /// <summary>
    /// The checkpoint with <c>cls_token</c> [1, C, D], <c>pos_embed_cls</c> [1, C, D] and <c>pos_embed_pat</c> [1, g·g, D] in place of
    /// its <c>pos_embed</c> (g = <paramref name="gridSide"/>, the model's training grid). The checkpoint may hold 1 class token
    /// (repeated C times) or already C. A checkpoint without <c>pos_embed</c> (an MCTformer+ checkpoint) is returned as it is.
    /// New tensors are float32 and belong to the caller; the others are the checkpoint's.
    /// </summary>
    /// <exception cref="WeakSegException">another class-token count, a non-square grid, or (official init) a model grid that is not
    /// twice the checkpoint's</exception>
    public static Dictionary<string, Tensor> FromJointPositionEmbedding(IReadOnlyDictionary<string, Tensor> checkpoint, int numClasses, int gridSide,
        MctFormerPlusPositionInit init)
    {
        var result = new Dictionary<string, Tensor>(checkpoint, StringComparer.Ordinal);
        if (!checkpoint.TryGetValue(PositionKey, out var joint)) return result;
        if (!checkpoint.TryGetValue(ClassTokenKey, out var classToken) || classToken.dim() != 3 || classToken.shape[0] != 1)
            throw new WeakSegException($"'{PositionKey}' needs a '{ClassTokenKey}' [1, P, D] beside it to tell its class rows from its patch rows");
        if (joint.dim() != 3 || joint.shape[0] != 1 || joint.shape[2] != classToken.shape[2])
            throw new WeakSegException($"'{PositionKey}' has shape {Shape(joint)}; expected [1, P + n, {classToken.shape[2]}]");
        int prefix = (int)classToken.shape[1];
        if (prefix != 1 && prefix != numClasses)
            throw new WeakSegException($"checkpoint has {prefix} class tokens; MCTformer+ starts from 1 (repeated for the {numClasses} classes) or {numClasses}");
        long patches = joint.shape[1] - prefix, dim = joint.shape[2];
        int side = (int)Math.Round(Math.Sqrt(Math.Max(0, patches)));
        if (patches < 1 || (long)side * side != patches)
            throw new WeakSegException($"'{PositionKey}' has {patches} patch rows after {prefix} class rows; a square grid is required");

        using var scope = torch.NewDisposeScope();
        var asFloat = joint.to_type(ScalarType.Float32);
        var classRows = asFloat.narrow(1, 0, prefix);
        var tokens = classToken.to_type(ScalarType.Float32);
        if (prefix == 1)
        {
            classRows = classRows.repeat(1, numClasses, 1);
            tokens = tokens.repeat(1, numClasses, 1);
        }
        var grid = asFloat.narrow(1, prefix, patches);                                                   // [1, s·s, D]
        Tensor patchRows;
        if (init == MctFormerPlusPositionInit.NearestDouble)
        {
            if (gridSide != 2 * side)
                throw new WeakSegException($"the official position-embedding init repeats each entry of the checkpoint's {side}×{side} grid 2×2 " +
                    $"({2 * side}×{2 * side}), but the model's grid is {gridSide}×{gridSide}; use model.position_init=Resize to resize it instead");
            patchRows = grid.reshape(1, side, side, dim).repeat_interleave(2, 1).repeat_interleave(2, 2).reshape(1, (long)gridSide * gridSide, dim);
        }
        else
        {
            patchRows = PositionEmbedding.Resize(grid, 0, gridSide, gridSide, PositionEmbeddingResize.BicubicSize);
        }
        result.Remove(PositionKey);
        result[ClassTokenKey] = tokens.contiguous().MoveToOuterDisposeScope();
        result[ClassPositionKey] = classRows.contiguous().MoveToOuterDisposeScope();
        result[PatchPositionKey] = patchRows.contiguous().MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// Loads a timm-format safetensors checkpoint into <paramref name="model"/> after <see cref="FromJointPositionEmbedding"/>; the rest
    /// as <see cref="TimmWeightImport.Load"/> (heads of another shape skipped). Errors name the file.
    /// </summary>
    public static WeightImportReport LoadFile(MctFormerPlusModel model, string path)
    {
        var file = SafetensorsFile.Read(path);
        var tensors = file.ToTorchDictionary();
        var created = new List<Tensor>();
        try
        {
            var stripped = TimmWeightImport.StripKeyPrefixes(tensors, new WeightImportOptions().StripPrefixes);
            var config = model.MethodConfig;
            var prepared = FromJointPositionEmbedding(stripped, config.NumClasses, config.Backbone.GridSize, config.PositionInit);
            created.AddRange(prepared.Values.Where(t => !tensors.Values.Contains(t)));
            return TimmWeightImport.Load(model, prepared);
        }
        catch (WeakSegException e)
        {
            throw WeakSegException.ForFile(path, e.Message);
        }
        finally
        {
            foreach (var t in tensors.Values.Concat(created)) t.Dispose();
        }
    }

    static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
