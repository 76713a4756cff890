using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Methods.Localization;

[Collection("Torch")]
public class ClassMapsTests
{
    [Fact]
    public void Normalisation_and_one_based_class_selection_by_hand()
    {
        using var scope = torch.NewDisposeScope();
        var maps = torch.tensor(new float[] { 1, 2, 4, -1, /* class 2 */ 0, 0, 0, 0, /* class 3 */ 0.5f, 0.25f, 0, 0.125f }).reshape(3, 2, 2);
        var normalised = ClassMaps.NormalizePerClass(maps);
        TensorAssert.Close(torch.tensor(new float[] { 0.25f, 0.5f, 1, 0, 0, 0, 0, 0, 1, 0.5f, 0, 0.25f }).reshape(3, 2, 2), normalised, 0, "normalised");
        var selected = ClassMaps.SelectClasses(normalised, new[] { 3, 1 });                      // dataset classes 3 then 1 = maps 2 then 0
        TensorAssert.Close(torch.tensor(new float[] { 1, 0.5f, 0, 0.25f, 0.25f, 0.5f, 1, 0 }).reshape(2, 2, 2), selected, 0, "selected");
        Assert.Contains("class 4 is outside 1..3", Assert.Throws<WeakSegException>(() => ClassMaps.SelectClasses(maps, new[] { 4 })).Message);
        Assert.Contains("class 0 is outside 1..3", Assert.Throws<WeakSegException>(() => ClassMaps.SelectClasses(maps, new[] { 0 })).Message);
    }

    [Fact]
    public void Multilabel_soft_margin_matches_a_hand_computation()
    {
        using var scope = torch.NewDisposeScope();
        var logits = torch.tensor(new float[] { 0, 2, -1, 3 }).reshape(2, 2);
        var labels = torch.tensor(new float[] { 1, 0, 1, 1 }).reshape(2, 2);
        // sample 0: (log 2 + log(1 + e²)) / 2 ; sample 1: (log(1 + e) + log(1 + e⁻³)) / 2 ; then the batch mean.
        double s0 = (Math.Log(2) + Math.Log(1 + Math.Exp(2))) / 2, s1 = (Math.Log(1 + Math.E) + Math.Log(1 + Math.Exp(-3))) / 2;
        Assert.Equal((s0 + s1) / 2, ClassificationLoss.MultilabelSoftMargin(logits, labels).item<float>(), 5);
    }
}
