using System.CommandLine;
using WeakSeg.Models.Weights;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg weights export --out r18.safetensors [--onnx FILE]`: the packaged ImageNet ResNet-18 as torchvision-keyed safetensors.</summary>
public static class WeightsCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "safetensors file to write (torchvision keys: conv1, bn1, layer1.0.conv1, …, layer2.0.downsample.0).", Required = true };
        var onnx = new Option<string?>("--onnx") { Description = $"ResNet ONNX file to import (default: the packaged {PackagedResNet18.ModelRelativePath})." };
        var export = new Command("export", "Import the ImageNet ResNet-18 shipped in package Microsoft.ML.DnnImageFeaturizer.ResNet18 and write its weights as safetensors.");
        export.Options.Add(output);
        export.Options.Add(onnx);
        export.SetAction(parseResult =>
        {
            var summary = ResNetWeightsExport.Export(parseResult.GetValue(onnx), parseResult.GetValue(output)!);
            var r = summary.Report;
            var notTracked = r.Missing.Count(k => k.EndsWith("num_batches_tracked", StringComparison.Ordinal));
            Console.WriteLine($"imported {summary.OnnxPath}: blocks per stage {string.Join("-", summary.BlocksPerStage)}, {r.Loaded.Count} tensors loaded" +
                (notTracked > 0 ? $" ({notTracked} num_batches_tracked counters written as 0)" : "") +
                (r.Missing.Count > notTracked ? $", {r.Missing.Count - notTracked} missing" : ""));
            Console.WriteLine($"wrote {summary.Tensors} tensors to {summary.OutputPath}");
            return 0;
        });
        var cmd = new Command("weights", "Pretrained weights that come with WeakSeg's packages.");
        cmd.Subcommands.Add(export);
        return cmd;
    }
}
