using TorchSharp;
using WeakSeg.Models;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>
/// The total of a single-stage training loss: each term is recorded as a part under its name and added to the total with its
/// weight (in order, with <see cref="StableScalars.Add"/>), so the parts and the total come from one place.
/// </summary>
public sealed class WeightedLossSum
{
    readonly List<(string Name, Tensor Value)> parts = [];
    Tensor? total;

    /// <summary>Records <paramref name="term"/> as part <paramref name="name"/> and adds weight × term to the total.</summary>
    public void Add(string name, double weight, Tensor term)
    {
        parts.Add((name, term));
        using var w = weight.ToScalar();
        var weighted = term.mul(w);
        total = total is null ? weighted : StableScalars.Add(total, weighted);
    }

    /// <summary>Records a part that is reported but not added to the total (e.g. a flag).</summary>
    public void Report(string name, Tensor value) => parts.Add((name, value));

    /// <summary>The total and its parts; <paramref name="method"/> names the method when every weight was 0 at <paramref name="step"/>.</summary>
    public LossTerms ToLossTerms(string method, long step) =>
        total is null
            ? throw new WeakSegException($"every {method} loss weight is 0 at step {step}; nothing to train")
            : new LossTerms(total, parts);
}
