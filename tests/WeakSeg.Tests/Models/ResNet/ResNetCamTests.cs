using TorchSharp;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models.ResNet;

[Collection("Torch")]
public class ResNetCamTests
{
    [Fact]
    public void Scores_are_the_spatial_mean_of_the_maps_on_the_stride_8_grid_of_a_pretrained_trunk()
    {
        torch.manual_seed(1);
        using var model = new ResNetCam(new ResNetCamConfig { NumClasses = 3 });
        Assert.Equal(5 + 20 + 25 + 25, model.ImportReport!.Loaded.Count);   // stem, layer1, layer2, layer3
        Assert.Contains("layer4.0.conv1.weight", model.ImportReport.Unexpected);
        Assert.Equal(8, model.OutputStride);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var images = torch.randn(2, 3, 96, 64);
        using var output = model.forward(images);
        Assert.Equal(new long[] { 2, 3, 12, 8 }, output.Cams.shape);
        Assert.Equal(new long[] { 2, 3 }, output.Logits.shape);
        // Hand computation: score of (image 1, class 2) = average over the 12×8 positions.
        var cams = output.Cams.data<float>().ToArray();
        double sum = 0;
        for (int i = 0; i < 96; i++) sum += cams[(1 * 3 + 2) * 96 + i];
        Assert.Equal(sum / 96, output.Logits[1, 2].item<float>(), 1e-4);
        var maps = model.Maps(images);
        Assert.True(maps.min().item<float>() >= 0);
        Assert.True(maps.eq(output.Cams.clamp_min(0)).all().item<bool>());

        // Layers 1–2 of the trunk are the packaged network's.
        using var reference = new WeakSeg.Models.ResNet.ResNet(ResNetConfig.PackagedResNet18 with { Stages = 2 });
        OnnxResNetImport.LoadPackaged(reference);
        reference.eval();
        var trunk = model.modules().OfType<WeakSeg.Models.ResNet.ResNet>().Single();
        var input = ResNetInput.FromImageNetNormalised(images);
        Assert.True(trunk.ForwardStages(input)[1].eq(reference.forward(input)).all().item<bool>());
    }

    [Fact]
    public void A_few_steps_lower_the_loss_and_keep_the_batch_norm_statistics()
    {
        torch.manual_seed(2);
        using var model = new ResNetCam(new ResNetCamConfig { NumClasses = 3, TrunkLearningRateScale = 0.1 });
        Assert.Equal(0.1, model.LearningRateScale("backbone.layer3.1.conv2.weight"));
        Assert.Equal(1.0, model.LearningRateScale("classifier.weight"));
        var statsBefore = model.state_dict().Where(p => p.Key.Contains("running_", StringComparison.Ordinal))
            .ToDictionary(p => p.Key, p => p.Value.data<float>().ToArray());
        model.train();
        using var images = torch.randn(4, 3, 32, 32);
        using var labels = torch.tensor(new float[] { 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0 }).reshape(4, 3);
        using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-3);
        var losses = new List<float>();
        for (int step = 0; step < 15; step++)
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            using var output = model.forward(images);
            var loss = ResNetCam.Loss(output, labels);
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < 0.7f * losses[0], $"loss {losses[0]} → {losses[^1]}");
        foreach (var (key, before) in statsBefore)
            Assert.True(before.AsSpan().SequenceEqual(model.state_dict()[key].data<float>().ToArray()), $"{key} changed");
    }
}
